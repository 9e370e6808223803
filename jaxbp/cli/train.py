"""``jaxbp train``: flags -> ``jaxbp.recipes`` -> ``jaxbp.train.fit`` -> printed summary and files.

Writes ``DIR/metrics.json`` (test accuracy and loss, best epoch, the
configuration, the per-epoch history) and ``DIR/curves.png``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

from jaxbp import recipes
from jaxbp.cli import building, distributed, parsing, reporting, resuming, warmup
from jaxbp.cli.errors import UsageError, training_errors
from jaxbp.cli.interrupts import interrupted_message
from jaxbp.cli.parsing import number

EVAL_BATCH_SIZE = 1000  #: ``--eval-batch-size``'s default (examples at a time)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` and its flags."""
    from jaxbp.backprop import BACKPROPS

    p = subparsers.add_parser(
        "train", help="train a network with hand-written backprop"
    )
    parsing.add_model_flags(p)
    _add_optimizer_flags(p)
    p.add_argument(
        "--batch-size",
        type=parsing.batch_size,
        default=argparse.SUPPRESS,
        help="a number, or 'full' for full-batch gradient descent (default 32)",
    )
    p.add_argument(
        "--eval-batch-size",
        type=parsing.batch_size,
        default=argparse.SUPPRESS,  # unset, told apart from 'full' (None)
        help="evaluate this many examples at a time (bounded memory on large "
        f"datasets), or 'full' for whole splits at once (default "
        f"{EVAL_BATCH_SIZE}; text: --eval-batches)",
    )
    p.add_argument(
        "--epochs",
        type=number(int, 1, strict=False),
        default=None,
        help="default 200 mlp, 40 cnn",
    )
    _add_step_flags(p)
    p.add_argument(
        "--patience",
        type=number(int, 1, strict=False),
        default=None,
        help="early stopping: evaluations (epochs; text: every --eval-interval "
        "steps) without validation improvement",
    )
    p.add_argument("--backprop", default="manual", choices=BACKPROPS)
    p.add_argument(
        "--devices",
        type=number(int, 1, strict=False),
        default=None,
        help="data-parallel over this many devices (of the whole job with "
        "--num-processes; default 1 per process)",
    )
    _add_output_flags(p)
    distributed.add_flags(p)
    return p


def _add_step_flags(p: argparse.ArgumentParser) -> None:
    """``--dataset text`` trains for steps, evaluating every so many."""
    p.add_argument(
        "--steps",
        type=number(int, 1, strict=False),
        default=None,
        help="--dataset text: optimizer steps (default 2000); text trains "
        "in steps, not epochs",
    )
    p.add_argument(
        "--eval-interval",
        type=number(int, 1, strict=False),
        default=None,
        help="--dataset text: steps between validation losses (default 200)",
    )
    p.add_argument(
        "--eval-batches",
        type=number(int, 1, strict=False),
        default=None,
        help="--dataset text: validation batches per evaluation (default 20)",
    )


def _add_optimizer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--optimizer",
        default=None,
        choices=recipes.OPTIMIZERS,
        help="default adam (mlp), adamw (cnn)",
    )
    p.add_argument(
        "--impl",
        default="jaxbp",
        choices=recipes.IMPLS,
        help="hand-rolled jaxbp.optim or optax",
    )
    p.add_argument(
        "--lr",
        type=number(float, 0.0),
        default=None,
        help="learning rate (default 1e-3 mlp, 2e-3 cnn)",
    )
    p.add_argument(
        "--lr-schedule",
        default=None,
        choices=recipes.SCHEDULES,
        help="cosine: decay the learning rate to 0 over the run "
        "(default constant for mlp, cosine for cnn)",
    )
    p.add_argument(
        "--weight-decay",
        type=number(float, 0.0, strict=False),
        default=None,
        help="decoupled weight decay, --optimizer adamw only (default 1.0 "
        "with the cnn's adamw, otherwise 0)",
    )
    p.add_argument(
        "--l2",
        type=number(float, 0.0, strict=False),
        default=0.0,
        help="coupled L2 penalty ½λΣ‖W‖² added to the loss, any optimizer (default 0)",
    )
    p.add_argument(
        "--clip-norm",
        type=number(float, 0.0),
        default=None,
        help="clip gradients to this global norm",
    )
    p.add_argument(
        "--warmup",
        type=number(int, 0, strict=False),
        default=None,
        help="steps of linear learning-rate warm-up from 0 (default 0; gpt 100)",
    )
    p.add_argument(
        "--min-lr",
        type=number(float, 0.0, strict=False),
        default=None,
        help="--lr-schedule cosine: the learning rate it decays to (default 0; "
        "gpt 1e-4)",
    )
    p.add_argument(
        "--beta2",
        type=number(float, 0.0, high=1.0),
        default=None,
        help="adam/adamw: the second-moment decay (default 0.999; gpt 0.99)",
    )


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--out", default="runs/latest", help="where metrics.json and curves.png go"
    )
    p.add_argument(
        "--checkpoint-dir", default=None, help="save a checkpoint every epoch here"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint"
    )
    p.add_argument(
        "--allow-changed-flags",
        action="store_true",
        help="with --resume: resume even though these flags changed (--lr, "
        "--weight-decay, --eval-batch-size only); the flags.json is updated",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ---------------------------------------------------------------- flag checks


def resolve_optimizer_presets(args) -> None:
    """The preset entries that go with the preset's optimizer (the CNN's and the
    GPT's decoupled weight decay, the GPT's β2 and decay on matrices only):
    taken when the optimizer is the preset's, else the optimizer's defaults.
    ``--weight-decay`` (decoupled, AdamW's) with another optimizer, or
    ``--beta2`` with one that is not Adam's, is a UsageError."""
    preset = recipes.PRESETS[args.model]
    same = args.optimizer == preset["optimizer"]
    if args.weight_decay is None:
        args.weight_decay = preset["weight_decay"] if same else 0.0
    elif args.optimizer != "adamw":
        raise UsageError(
            f"--weight-decay is decoupled weight decay, for --optimizer adamw only "
            f"(got --optimizer {args.optimizer}); use --l2 for an L2 penalty"
        )
    if args.beta2 is None:
        args.beta2 = preset.get("beta2") if same else None
    elif args.optimizer not in ("adam", "adamw"):
        raise UsageError(
            f"--beta2 applies to --optimizer adam or adamw only "
            f"(got --optimizer {args.optimizer})"
        )
    args.decay_matrices_only = same and preset.get("decay_matrices_only", False)


def check_step_flags(args) -> None:
    """Text trains in steps and other data in epochs: the other's flags are
    UsageErrors (checked before the presets fill them in). Text evaluates
    ``--eval-batches`` batches of ``--batch-size``, so ``--eval-batch-size``
    is not for it; elsewhere it defaults to :data:`EVAL_BATCH_SIZE`."""
    text = args.dataset == parsing.TEXT
    given = ("epochs",) if text else ("steps", "eval_interval", "eval_batches")
    for name in given:
        if getattr(args, name) is not None:
            other = "--steps" if text else "--epochs"
            raise UsageError(
                f"{parsing.flag(name)} does not apply to --dataset {args.dataset}, "
                f"which trains in {'steps' if text else 'epochs'}: use {other}"
            )
    if not text:
        args.eval_batch_size = getattr(args, "eval_batch_size", EVAL_BATCH_SIZE)
    elif hasattr(args, "eval_batch_size"):
        raise UsageError(
            "--eval-batch-size does not apply to --dataset text, which evaluates "
            "--eval-batches batches of --batch-size"
        )


def check_paths(args) -> None:
    """``--out`` and ``--checkpoint-dir`` usable, checked before any work."""
    parsing.check_writable_directory("--out", args.out)
    if args.checkpoint_dir is not None:
        parsing.check_writable_directory("--checkpoint-dir", args.checkpoint_dir)


def _check_checkpoint_flags(args) -> None:
    from jaxbp import checkpoint

    if args.resume and args.checkpoint_dir is None:
        raise UsageError("--resume needs --checkpoint-dir DIR")
    if args.checkpoint_dir is None:
        return
    directory = Path(args.checkpoint_dir)
    if args.resume:
        resuming.check_resume(args)
    elif directory.is_dir() and checkpoint.latest(directory):
        raise UsageError(
            f"--checkpoint-dir {directory} already holds checkpoints: add --resume "
            "to continue from them, or use an empty directory"
        )


def check_training_flags(args, n_train: int) -> None:
    """Raise UsageError for training flags that do not fit each other or the data."""
    import jax

    batch = args.batch_size or n_train
    if batch > n_train:
        raise UsageError(
            f"--batch-size must be at most the training set size {n_train}; "
            f"got {args.batch_size}"
        )
    available = jax.devices()
    if args.devices > len(available):
        platform = available[0].platform
        hint = (
            "; XLA_FLAGS=--xla_force_host_platform_device_count=N in the "
            "environment gives N host devices"
            if platform == "cpu"
            else ""
        )
        raise UsageError(
            f"--devices {args.devices}: only {len(available)} {platform} "
            f"device(s) are available{hint}"
        )
    if batch % args.devices:
        raise UsageError(
            f"--batch-size {batch} must be divisible by --devices {args.devices} "
            "(each device takes an equal share of every batch)"
        )
    _check_checkpoint_flags(args)


# ---------------------------------------------------------------- running


def fit_and_test(model, dataset, loss, optimizer, args, on_epoch, interrupts):
    """The one place that calls ``jaxbp.train``: fit on the training split
    (validation each epoch), then evaluate on the test split.

    Returns ``(FitResult, seconds of fit, (test_loss, test_accuracy))``; a
    diverged run is :class:`Diverged`, a checkpoint that cannot be read a
    UsageError naming ``--checkpoint-dir``. When ``interrupts`` caught a
    signal, training stops after its epoch and the test split is not
    evaluated (``(None, None)``).
    """
    from jaxbp import train

    def split(s):
        return s.x, recipes.targets(dataset, s, loss)

    started = time.perf_counter()
    prepare_test = functools.partial(
        train.compile_evaluate,
        model,
        split(dataset.test),
        loss=loss,
        batch_size=args.eval_batch_size,
    )
    with (
        training_errors(args, _epoch_and_step),
        warmup.in_background(warmup.import_plotting, prepare_test),
    ):
        result = train.fit(
            model,
            split(dataset.train),
            split(dataset.val),
            loss=loss,
            optimizer=optimizer,
            backprop=args.backprop,
            batch_size=args.batch_size,
            epochs=args.epochs,
            l2=args.l2,
            clip_norm=args.clip_norm,
            patience=args.patience,
            seed=args.seed,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            callback=on_epoch,
            devices=args.devices,
            should_stop=lambda: interrupts.signal is not None,
            eval_batch_size=args.eval_batch_size,
        )
    seconds = time.perf_counter() - started
    if interrupts.signal is not None:
        return result, seconds, (None, None)
    test = train.evaluate(
        model,
        result.params,
        split(dataset.test),
        state=result.state,
        loss=loss,
        batch_size=args.eval_batch_size,
    )
    return result, seconds, test


def _epoch_and_step(error) -> str:
    return f"epoch {error.epoch}, step {error.step}"


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def write_outputs(args, dataset, loss, result, test, seconds, interrupted=False):
    """``metrics.json`` and ``curves.png`` in ``--out`` (process 0 of a job
    only); returns the directory."""
    from jaxbp.plots import plot_curves

    test_loss, test_accuracy = test
    out = Path(args.out)
    if not distributed.writes_files():
        return out
    out.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k not in ("command", "argv")}
    config.update(loss=loss, hidden=list(args.hidden))
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "interrupted": interrupted,
        "train_seconds": seconds,
        "compile_seconds": result.compile_seconds,
        "compiled_programs": result.compiled_programs,
        "config": config,
        "history": result.history,
    }
    (out / "metrics.json").write_text(
        json.dumps(metrics, indent=2, default=_json_default)
    )
    title = f"{dataset.name}: {building.model_summary(args, loss)}"
    plot_curves(result.history, out / "curves.png", title=title)
    return out


def prepare_flags(args) -> None:
    """Every flag checked and the presets filled in, before any work."""
    check_paths(args)
    parsing.resolve_dataset_and_model(args)
    check_step_flags(args)
    parsing.apply_presets(args)
    parsing.check_model_flags(args)
    resolve_optimizer_presets(args)
    if args.dtype == "float64":  # else JAX would quietly truncate to float32
        import jax

        jax.config.update("jax_enable_x64", True)


def run(args) -> int:
    """Train as the flags say (as one process of a job with --num-processes,
    ``jaxbp.cli.distributed``); print the summary; 0 on success."""
    prepare_flags(args)
    return distributed.run_in_job(args, _run_prepared)


def _run_prepared(args) -> int:
    if args.dataset == parsing.TEXT:
        from jaxbp.cli import train_text

        return train_text.run(args)
    dataset = building.load_dataset(args)
    loss = building.choose_loss(args, dataset)
    n_train = dataset.train.x.shape[0]
    check_training_flags(args, n_train)
    model = building.build_model(args, dataset, loss)
    steps = recipes.total_steps(n_train, args.batch_size, args.epochs)
    optimizer = building.build_optimizer(args, steps)
    (result, seconds, test), trained, stopped = reporting.train_with_progress(
        args,
        lambda on_epoch, interrupts: fit_and_test(
            model, dataset, loss, optimizer, args, on_epoch, interrupts
        ),
    )
    out = write_outputs(args, dataset, loss, result, test, seconds, stopped is not None)
    if stopped is not None:
        print(interrupted_message(args, result, out), file=sys.stderr)
        return 128 + stopped
    resumed = len(result.history) - trained if args.resume else None
    print(
        f"{dataset.name}: {building.model_summary(args, loss)}; "
        f"{reporting.done_summary(args, result, trained, resumed, seconds)}; "
        f"{reporting.test_summary(test)}\n"
        f"wrote {out / 'metrics.json'} and {out / 'curves.png'}"
    )
    return 0
