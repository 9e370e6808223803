"""The ``jaxbp`` command line: ``train``, ``gradcheck``, ``bench`` and ``explain``.

Bad input ends the program with exit status 2 and one line on stderr naming
what was expected and what came; no traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from jaxbp import cli_explain

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
IMPLS = ("jaxbp", "optax")
MODELS = ("mlp", "cnn")
SCHEDULES = ("constant", "cosine")

#: Defaults of the flags left unset, per model. The MLP's reach >= 98% median
#: test accuracy on digits and the CNN's >= 98.5% (README, "jaxbp train").
PRESETS = {
    "mlp": {
        "hidden": (256, 256),
        "input_dropout": 0.2,
        "dropout": 0.3,
        "batchnorm": False,
        "epochs": 200,
        "batch_size": 32,
        "lr": 1e-3,
        "lr_schedule": "constant",
        "optimizer": "adam",
        "weight_decay": 0.0,
    },
    "cnn": {
        "hidden": (128,),
        "input_dropout": 0.0,
        "dropout": 0.5,
        "batchnorm": True,
        "epochs": 40,
        "batch_size": 32,
        "lr": 2e-3,
        "lr_schedule": "cosine",
        # decoupled weight decay, chosen by 5-fold cross-validation on the
        # training+validation images: 9 errors in 1,437 against 14 for plain
        # Adam (python experiments/cnn_selection.py)
        "optimizer": "adamw",
        "weight_decay": 1.0,
    },
}


#: The preset entries that only ``jaxbp train`` has flags for.
TRAINING_FLAGS = (
    "optimizer",
    "weight_decay",
    "batch_size",
    "lr",
    "lr_schedule",
    "epochs",
)


class UsageError(Exception):
    """A flag with a nonsensical value; the message names the flag."""


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------- parsing


def _hidden_sizes(text: str) -> tuple[int, ...]:
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive integers like 128,128; got {text!r}"
        ) from None
    if any(s <= 0 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"hidden sizes must be positive integers; got {text!r}"
        )
    return sizes


def _batch_size(text: str):
    if text.lower() == "full":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'full'; got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'full'; got {text!r}"
        )
    return value


def _number(kind, low=None, *, strict=True, high=None, high_strict=True):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}; got {text!r}"
            ) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
        if low is not None and (value <= low if strict else value < low):
            raise argparse.ArgumentTypeError(
                f"must be {'>' if strict else '>='} {low}; got {text}"
            )
        if high is not None and (value >= high if high_strict else value > high):
            raise argparse.ArgumentTypeError(
                f"must be {'<' if high_strict else '<='} {high}; got {text}"
            )
        return value

    return parse


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    from jaxbp import activations, data, initializers, losses

    p.add_argument("--dataset", default="digits", choices=data.DATASETS)
    p.add_argument(
        "--data-dir", default=None, help="directory of MNIST-format IDX files"
    )
    p.add_argument("--model", default="mlp", choices=MODELS)
    p.add_argument(
        "--hidden",
        type=_hidden_sizes,
        default=None,
        help="hidden layer sizes, e.g. 128,128 (mlp default 256,256; "
        "cnn: its dense layer, default 128)",
    )
    p.add_argument(
        "--channels",
        type=_hidden_sizes,
        default=None,
        help="cnn: output channels of its conv layers, e.g. 8,16 (default 32,64)",
    )
    p.add_argument(
        "--activation", default="relu", choices=tuple(activations.ACTIVATIONS)
    )
    p.add_argument(
        "--init",
        default=None,
        choices=tuple(initializers.INITIALIZERS),
        help="default: he for the ReLU family, xavier otherwise",
    )
    p.add_argument(
        "--init-std",
        type=_number(float, 0.0),
        default=None,
        help="std of --init normal (default 1)",
    )
    p.add_argument(
        "--loss",
        default=None,
        choices=tuple(losses.LOSSES),
        help="default: cross_entropy (classification), mse (regression)",
    )
    p.add_argument(
        "--batchnorm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batch norm after each hidden dense (or conv) layer "
        "(default: off for mlp, on for cnn)",
    )
    p.add_argument(
        "--dropout",
        type=_number(float, 0.0, strict=False, high=1.0),
        default=None,
        metavar="RATE",
        help="dropout rate after each hidden activation (default 0.3 mlp, 0.5 cnn)",
    )
    p.add_argument(
        "--input-dropout",
        type=_number(float, 0.0, strict=False, high=1.0),
        default=None,
        metavar="RATE",
        help="dropout rate on the input features (default 0.2 mlp)",
    )
    p.add_argument(
        "--residual",
        action="store_true",
        help="residual connections around equal-width hidden blocks",
    )
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--seed", type=_number(int, 0, strict=False), default=0)


def build_parser() -> argparse.ArgumentParser:
    from jaxbp.backprop import BACKPROPS

    parser = _OneLineParser(
        prog="jaxbp",
        description="Backpropagation by hand in JAX: train, check gradients, benchmark.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_OneLineParser
    )

    train = sub.add_parser("train", help="train a network with hand-written backprop")
    _add_model_flags(train)
    train.add_argument(
        "--optimizer",
        default=None,
        choices=OPTIMIZERS,
        help="default adam (mlp), adamw (cnn)",
    )
    train.add_argument(
        "--impl",
        default="jaxbp",
        choices=IMPLS,
        help="hand-rolled jaxbp.optim or optax",
    )
    train.add_argument(
        "--lr",
        type=_number(float, 0.0),
        default=None,
        help="learning rate (default 1e-3 mlp, 2e-3 cnn)",
    )
    train.add_argument(
        "--lr-schedule",
        default=None,
        choices=SCHEDULES,
        help="cosine: decay the learning rate to 0 over the run "
        "(default constant for mlp, cosine for cnn)",
    )
    train.add_argument(
        "--batch-size",
        type=_batch_size,
        default=argparse.SUPPRESS,
        help="a number, or 'full' for full-batch gradient descent (default 32)",
    )
    train.add_argument(
        "--epochs",
        type=_number(int, 1, strict=False),
        default=None,
        help="default 200 mlp, 40 cnn",
    )
    train.add_argument(
        "--patience",
        type=_number(int, 1, strict=False),
        default=None,
        help="early stopping: epochs without validation improvement",
    )
    train.add_argument(
        "--weight-decay",
        type=_number(float, 0.0, strict=False),
        default=None,
        help="L2 penalty (decoupled weight decay for adamw); default 1.0 with "
        "the cnn's adamw, otherwise 0",
    )
    train.add_argument(
        "--clip-norm",
        type=_number(float, 0.0),
        default=None,
        help="clip gradients to this global norm",
    )
    train.add_argument("--backprop", default="manual", choices=BACKPROPS)
    train.add_argument(
        "--devices",
        type=_number(int, 1, strict=False),
        default=1,
        help="data-parallel over this many devices",
    )
    train.add_argument(
        "--out", default="runs/latest", help="where metrics.json and curves.png go"
    )
    train.add_argument(
        "--checkpoint-dir", default=None, help="save a checkpoint every epoch here"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    check = sub.add_parser(
        "gradcheck",
        help="check manual gradients against autodiff and finite differences",
    )
    _add_model_flags(check)
    check.add_argument(
        "--batch",
        type=_number(int, 1, strict=False),
        default=16,
        help="examples in the checked batch",
    )
    check.add_argument("--no-finite-differences", action="store_true")

    bench = sub.add_parser(
        "bench", help="time manual vs autodiff gradients and training"
    )
    bench.add_argument("--quick", action="store_true")
    bench.add_argument("--out", default="runs/bench")
    cli_explain.add_parser(sub)
    return parser


# ---------------------------------------------------------------- building


def default_loss(dataset) -> str:
    return "mse" if dataset.task == "regression" else "cross_entropy"


def output_size(dataset, loss: str) -> int:
    if dataset.task == "regression":
        return dataset.train.y.shape[-1] if dataset.train.y.ndim > 1 else 1
    if loss == "binary_cross_entropy" or (loss == "hinge" and dataset.num_classes == 2):
        if dataset.num_classes != 2:
            raise UsageError(
                f"--loss {loss} needs a dataset with 2 classes; "
                f"{dataset.name} has {dataset.num_classes}"
            )
        return 1
    if loss == "mse":
        return dataset.num_classes
    return dataset.num_classes


def targets_for(dataset, split, loss: str):
    """Labels in the form the loss takes (one-hot rows for mse on classes)."""
    import numpy as np

    if dataset.task == "classification" and loss == "mse":
        return np.eye(dataset.num_classes, dtype=np.float32)[split.y]
    return split.y


def build_model(args, dataset, loss: str):
    import jaxbp
    from jaxbp import initializers, model

    init = args.init
    if init == "normal" and args.init_std is not None:
        init = initializers.normal(args.init_std)
    n_out = output_size(dataset, loss)
    if args.model == "cnn":
        if len(dataset.in_shape) != 3:
            raise UsageError(
                f"--model cnn needs image data; {dataset.name} is not images"
            )
        channels = {} if args.channels is None else {"channels": args.channels}
        return model.cnn(
            in_shape=dataset.in_shape,
            **channels,
            num_classes=n_out,
            hidden=args.hidden[0] if args.hidden else 0,
            activation=args.activation,
            init=init,
            dropout=args.dropout,
            batchnorm=args.batchnorm,
            dtype=args.dtype,
        )
    if args.channels is not None:
        raise UsageError("--channels applies to --model cnn only")
    sizes = [math.prod(dataset.in_shape), *args.hidden, n_out]
    return jaxbp.mlp(
        sizes,
        args.activation,
        init,
        dtype=args.dtype,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        residual=args.residual,
        input_dropout=args.input_dropout,
    )


def build_optimizer(
    name: str,
    impl: str,
    lr: float,
    weight_decay: float,
    *,
    schedule="constant",
    steps=1,
):
    """The optimizer ``name`` from jaxbp.optim or optax (same arguments in both);
    ``schedule="cosine"`` decays the learning rate to 0 over ``steps`` updates."""
    if impl == "optax":
        import optax as lib
    else:
        from jaxbp import optim as lib
    if schedule == "cosine":
        lr = lib.cosine_decay_schedule(lr, steps)
    if name == "sgd":
        return lib.sgd(lr)
    if name == "momentum":
        return lib.sgd(lr, momentum=0.9)
    if name == "nesterov":
        return lib.sgd(lr, momentum=0.9, nesterov=True)
    if name == "adamw":
        return lib.adamw(lr, weight_decay=weight_decay)
    return getattr(lib, name)(lr)


def load_dataset(args):
    from jaxbp import data

    return data.load(
        args.dataset, data_dir=args.data_dir, seed=args.seed, images=args.model == "cnn"
    )


# ---------------------------------------------------------------- commands


def run_train(args) -> int:
    from jaxbp import train as training

    dataset = load_dataset(args)
    loss = args.loss or default_loss(dataset)
    n_train = dataset.train.x.shape[0]
    if args.batch_size is not None and args.batch_size > n_train:
        raise UsageError(
            f"--batch-size must be at most the training set size {n_train}; "
            f"got {args.batch_size}"
        )
    model = build_model(args, dataset, loss)
    steps_per_epoch = n_train // (args.batch_size or n_train)
    optimizer = build_optimizer(
        args.optimizer,
        args.impl,
        args.lr,
        args.weight_decay,
        schedule=args.lr_schedule,
        steps=args.epochs * steps_per_epoch,
    )
    weight_decay = 0.0 if args.optimizer == "adamw" else args.weight_decay
    train = (dataset.train.x, targets_for(dataset, dataset.train, loss))
    val = (dataset.val.x, targets_for(dataset, dataset.val, loss))
    config = {k: v for k, v in vars(args).items() if k not in ("command",)}
    config.update(loss=loss, hidden=list(args.hidden))

    progress = None if args.quiet else _progress_bar(args.epochs)

    def on_epoch(record):
        if progress is not None:
            postfix = {"loss": f"{record['train_loss']:.4f}"}
            if record.get("val_accuracy") is not None:
                postfix["val_acc"] = f"{record['val_accuracy']:.4f}"
            progress.set_postfix(postfix, refresh=False)
            progress.update(record["epoch"] - progress.n)

    started = time.perf_counter()
    try:
        result = training.fit(
            model,
            train,
            val,
            loss=loss,
            optimizer=optimizer,
            backprop=args.backprop,
            batch_size=args.batch_size,
            epochs=args.epochs,
            weight_decay=weight_decay,
            clip_norm=args.clip_norm,
            patience=args.patience,
            seed=args.seed,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            callback=on_epoch,
            devices=args.devices,
        )
    finally:
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - started
    test_loss, test_accuracy = training.evaluate(
        model,
        result.params,
        result.state,
        dataset.test.x,
        targets_for(dataset, dataset.test, loss),
        loss=loss,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "train_seconds": seconds,
        "config": config,
        "history": result.history,
    }
    (out / "metrics.json").write_text(
        json.dumps(metrics, indent=2, default=_json_default)
    )
    from jaxbp.plots import plot_curves

    plot_curves(
        result.history,
        out / "curves.png",
        title=f"{dataset.name}: {model_summary(args, loss)}",
    )
    summary = f"test loss {test_loss:.4f}"
    if test_accuracy is not None:
        summary += f", test accuracy {test_accuracy:.4f}"
    print(
        f"{dataset.name}: {model_summary(args, loss)}; {len(result.history)} epochs "
        f"in {seconds:.1f}s (best epoch {result.best_epoch}); {summary}\n"
        f"wrote {out / 'metrics.json'} and {out / 'curves.png'}"
    )
    return 0


def model_summary(args, loss: str) -> str:
    if args.model == "cnn":
        shape = "cnn"
    else:
        shape = (
            "mlp "
            + ("-".join(map(str, args.hidden)) or "linear")
            + f" {args.activation}"
        )
    extras = [
        f
        for f, on in (("batchnorm", args.batchnorm), ("residual", args.residual))
        if on
    ]
    if args.input_dropout:
        extras.append(f"input dropout {args.input_dropout:g}")
    if args.dropout:
        extras.append(f"dropout {args.dropout:g}")
    opt = getattr(args, "optimizer", None)
    parts = [shape, *extras, loss]
    if opt:
        schedule = " cosine" if args.lr_schedule == "cosine" else ""
        parts += [
            f"{opt} ({args.impl}) lr {args.lr:g}{schedule}"
            + (f" weight decay {args.weight_decay:g}" if args.weight_decay else ""),
            f"batch {args.batch_size or 'full'}",
            f"{args.backprop} backprop",
        ]
    return ", ".join(parts)


def run_gradcheck(args) -> int:
    import jax

    import jaxbp

    with jax.enable_x64(True):
        dataset = load_dataset(args)
        loss = args.loss or default_loss(dataset)
        args.dtype = "float64"
        model = build_model(args, dataset, loss)
        params, state = model.init_with_state(jax.random.key(args.seed))
        n = min(args.batch, dataset.train.x.shape[0])
        x = dataset.train.x[:n]
        y = targets_for(dataset, dataset.train, loss)[:n]
        report = jaxbp.check_grads(
            model,
            params,
            x,
            y,
            loss=loss,
            state=state,
            key=jax.random.key(args.seed + 1),
            finite_differences=not args.no_finite_differences,
        )
    print(f"{dataset.name}: {model_summary(args, loss)}; batch of {n}, float64")
    print(report)
    return 0 if report.ok else 1


def run_bench(args) -> int:
    from jaxbp import bench

    return bench.main(["--out", args.out] + (["--quick"] if args.quick else []))


def _progress_bar(total: int):
    from tqdm import tqdm

    return tqdm(
        total=total, unit="epoch", desc="training", dynamic_ncols=True, file=sys.stderr
    )


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def apply_presets(args) -> None:
    """Fill the flags left unset with the chosen model's defaults.

    The preset's weight decay goes with the preset's optimizer only: the CNN's
    decoupled decay of 1.0 under AdamW would be a crushing L2 penalty (λ = 1)
    with ``--optimizer adam``, so another optimizer gets 0 unless given.
    """
    preset = PRESETS[args.model]
    training = args.command == "train"
    for name, value in preset.items():
        if name == "weight_decay" or (name in TRAINING_FLAGS and not training):
            continue
        if name == "batch_size":  # None means "full", so unset is "absent"
            unset = not hasattr(args, name)
        else:
            unset = getattr(args, name, None) is None
        if unset:
            setattr(args, name, value)
    if training and args.weight_decay is None:
        same = args.optimizer == preset["optimizer"]
        args.weight_decay = preset["weight_decay"] if same else 0.0


def enable_compilation_cache() -> None:
    """Keep compiled programs on disk between runs (JAX's persistent cache).

    A second ``jaxbp train`` with the same model skips most compilation.
    ``JAXBP_COMPILATION_CACHE=0`` turns it off; a ``JAX_COMPILATION_CACHE_DIR``
    already set is respected; the default place is ``~/.cache/jaxbp/xla``.
    """
    import os

    if os.environ.get("JAXBP_COMPILATION_CACHE", "1") == "0":
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        jax.config.update(
            "jax_compilation_cache_dir", str(Path(base) / "jaxbp" / "xla")
        )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    enable_compilation_cache()
    if args.command in ("train", "gradcheck"):
        apply_presets(args)
    command = {
        "train": run_train,
        "gradcheck": run_gradcheck,
        "bench": run_bench,
        "explain": cli_explain.run,
    }[args.command]
    try:
        return command(args)
    except (UsageError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"jaxbp {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
