"""From the model flags to a dataset, a loss and a model (through ``jaxbp.recipes``),
and the one-line description of what was built."""

from __future__ import annotations

from jaxbp import data, recipes
from jaxbp.cli.errors import UsageError, one_line


def load_dataset(args):
    """The ``--dataset``; a problem with the files in ``--data-dir`` is a UsageError."""
    images = args.model == "cnn"
    if args.dataset not in data.FILE_DATASETS:
        return data.load(args.dataset, seed=args.seed, images=images)
    try:
        return data.load(
            args.dataset, data_dir=args.data_dir, seed=args.seed, images=images
        )
    except ValueError as error:  # a missing, unreadable or corrupt file
        raise UsageError(
            f"--data-dir {args.data_dir}: {one_line(str(error))}"
        ) from None


def load_text(args):
    """The ``--text-file`` corpus (default: pydoc_data's text) cut for
    ``--block-size``; a missing, empty, binary or too short file is a UsageError."""
    try:
        return data.text.text_corpus(args.text_file, block_size=args.block_size)
    except ValueError as error:
        flag = "--text-file" if args.text_file is not None else "--block-size"
        raise UsageError(
            f"{flag} {args.text_file or args.block_size}: {one_line(str(error))}"
        ) from None


def build_language_model(args, vocab_size: int):
    """The rnn, lstm or gru language model the flags describe."""
    if args.model == "gpt":
        sizes = {
            "layers": args.layers,
            "heads": args.heads,
            "width": args.width,
            "remat": args.remat,
            "dropout": args.dropout,
        }
    else:
        sizes = {"hidden": args.hidden, "embed_dim": args.embed_dim}
    return recipes.language_model(
        args.model, vocab_size, block_size=args.block_size, dtype=args.dtype, **sizes
    )


def choose_loss(args, dataset) -> str:
    """``--loss``, or the dataset's default; a loss that does not fit the
    dataset (a class loss on a regression, a 2-class loss on 10) is a UsageError."""
    loss = args.loss or recipes.default_loss(dataset)
    try:
        recipes.output_size(dataset, loss)
    except ValueError as error:
        raise UsageError(f"--loss {loss}: {error}") from None
    return loss


def build_model(args, dataset, loss: str):
    """The model the flags describe (flags already checked and preset-filled)."""
    return recipes.model(
        args.model,
        dataset,
        loss=loss,
        hidden=args.hidden,
        channels=args.channels,
        activation=args.activation,
        init=args.init,
        init_std=args.init_std,
        batchnorm=args.batchnorm,
        dropout=args.dropout,
        input_dropout=args.input_dropout,
        residual=args.residual,
        dtype=args.dtype,
    )


def build_optimizer(args, steps: int):
    """The optimizer of the training flags, for a run of ``steps`` updates;
    ``--warmup`` and ``--min-lr`` that do not fit it are UsageErrors."""
    warmup = args.warmup or 0
    min_lr = args.min_lr or 0.0
    if args.min_lr and args.lr_schedule != "cosine":
        raise UsageError("--min-lr applies to --lr-schedule cosine only")
    if min_lr > args.lr:
        raise UsageError(f"--min-lr {args.min_lr:g} must be at most --lr {args.lr:g}")
    if warmup >= steps:
        raise UsageError(
            f"--warmup {warmup} must be fewer than the run's {steps} steps"
        )
    return recipes.optimizer(
        args.optimizer,
        impl=args.impl,
        learning_rate=args.lr,
        schedule=args.lr_schedule,
        steps=steps,
        weight_decay=args.weight_decay,
        warmup=warmup,
        min_learning_rate=min_lr,
        beta2=args.beta2,
        decay_matrices_only=getattr(args, "decay_matrices_only", False),
    )


def _training_summary(args) -> list[str]:
    schedule = " cosine" if args.lr_schedule == "cosine" else ""
    if args.min_lr:
        schedule += f" to {args.min_lr:g}"
    if args.warmup:
        schedule += f" after {args.warmup} warm-up steps"
    optimizer = f"{args.optimizer} ({args.impl}) lr {args.lr:g}{schedule}"
    if args.beta2 is not None:
        optimizer += f" β2 {args.beta2:g}"
    if args.weight_decay:
        optimizer += f" weight decay {args.weight_decay:g}"
        if getattr(args, "decay_matrices_only", False):
            optimizer += " (matrices)"
    if args.l2:
        optimizer += f" l2 {args.l2:g}"
    if args.clip_norm:
        optimizer += f" clip {args.clip_norm:g}"
    return [
        optimizer,
        f"batch {args.batch_size or 'full'}",
        f"{args.backprop} backprop",
    ]


def model_summary(args, loss: str) -> str:
    """One line: the model, its extras, the loss and (train) the optimizer."""
    if args.model == "gpt":
        shape = (
            f"gpt {args.layers} layers, {args.heads} heads, width "
            f"{args.width}, block {args.block_size}"
        )
        if args.remat:
            shape += ", remat"
    elif args.model in recipes.TEXT_MODELS:
        widths = "-".join(map(str, args.hidden))
        shape = (
            f"{args.model} {widths}, embedding {args.embed_dim}, "
            f"block {args.block_size}"
        )
    elif args.model == "cnn":
        shape = "cnn"
    else:
        widths = "-".join(map(str, args.hidden)) or "linear"
        shape = f"mlp {widths} {args.activation}"
    extras = [
        f
        for f, on in (("batchnorm", args.batchnorm), ("residual", args.residual))
        if on
    ]
    if args.input_dropout:
        extras.append(f"input dropout {args.input_dropout:g}")
    if args.dropout:
        extras.append(f"dropout {args.dropout:g}")
    parts = [shape, *extras, loss]
    if args.command == "train":
        parts += _training_summary(args)
    return ", ".join(parts)
