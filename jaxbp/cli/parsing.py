"""The argument parser: one-line errors, flag-value parsers, the model flags, presets.

argparse reports a bad flag value as one line naming the flag and exits 2;
flags that are fine one by one but contradict each other are checked here too
(:func:`check_model_flags`) and raised as :class:`UsageError`.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from jaxbp import activations, data, initializers, losses, recipes
from jaxbp.cli.errors import UsageError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------- flag values


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``"128,128"`` -> ``(128, 128)``; ``""`` or ``"none"`` -> ``()``."""
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


def batch_size(text: str) -> int | None:
    """A positive integer, or ``"full"`` (None: full-batch gradient descent)."""
    if text.lower() == "full":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'full'; got {text!r}"
        )
    return value


def number(kind, low=None, *, strict=True, high=None, high_strict=True):
    """A parser of ``kind`` (int or float) values, finite, in the given bounds
    (``strict``: ``> low`` rather than ``>= low``; likewise ``high_strict``)."""

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


def rate(text: str) -> float:
    """A dropout rate in [0, 1)."""
    return number(float, 0.0, strict=False, high=1.0)(text)


# ---------------------------------------------------------------- model flags


#: The ``--dataset`` of character-level language modelling.
TEXT = "text"


def add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        default=None,
        choices=(*data.DATASETS, TEXT),
        help="default digits; text for --model rnn, lstm, gru or gpt",
    )
    p.add_argument(
        "--data-dir", default=None, help="directory of MNIST-format IDX files"
    )
    p.add_argument(
        "--text-file",
        default=None,
        help="--dataset text: a UTF-8 text file (default: CPython's own "
        "documentation, pydoc_data)",
    )
    p.add_argument("--seed", type=number(int, 0, strict=False, high=2**32), default=0)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    """The flags that choose the data and build the model (train and gradcheck)."""
    add_data_flags(p)
    p.add_argument(
        "--model",
        default=None,
        choices=recipes.MODELS,
        help="default mlp; lstm for --dataset text (rnn, lstm, gru: "
        "character-level language models)",
    )
    p.add_argument(
        "--hidden",
        type=hidden_sizes,
        default=None,
        help="hidden layer sizes, e.g. 128,128 (mlp default 256,256; "
        "cnn: its dense layer, default 128; rnn/lstm/gru: one recurrent "
        "layer per size, default 256)",
    )
    p.add_argument(
        "--embed-dim",
        type=number(int, 1, strict=False),
        default=None,
        help="rnn/lstm/gru: width of the character embedding (default 64)",
    )
    p.add_argument(
        "--block-size",
        type=number(int, 1, strict=False),
        default=None,
        help="rnn/lstm/gru/gpt: characters per training window (default 64)",
    )
    for name, what in (
        ("--layers", "transformer blocks (default 4)"),
        ("--heads", "attention heads per block (default 4)"),
        ("--width", "the residual stream's width, n_embd (default 128)"),
    ):
        p.add_argument(
            name, type=number(int, 1, strict=False), default=None, help=f"gpt: {what}"
        )
    p.add_argument(
        "--remat",
        action="store_true",
        help="gpt: gradient checkpointing per block (each block's backward "
        "recomputes its forward: less memory, more time)",
    )
    p.add_argument(
        "--channels",
        type=hidden_sizes,
        default=None,
        help="cnn: output channels of its conv layers, e.g. 8,16 (default 32,64)",
    )
    p.add_argument(
        "--activation",
        default=None,
        choices=tuple(activations.ACTIVATIONS),
        help="mlp and cnn (default relu)",
    )
    p.add_argument(
        "--init",
        default=None,
        choices=tuple(initializers.INITIALIZERS),
        help="default: he for the ReLU family, xavier otherwise",
    )
    p.add_argument(
        "--init-std",
        type=number(float, 0.0),
        default=None,
        help="std of --init normal (default 1)",
    )
    p.add_argument(
        "--loss",
        default=None,
        choices=tuple(losses.LOSSES),
        help="default: cross_entropy (classification), mse (regression)",
    )
    _add_layer_flags(p)
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))


def _add_layer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--batchnorm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="batch norm after each hidden dense (or conv) layer "
        "(default: off for mlp, on for cnn)",
    )
    p.add_argument(
        "--dropout",
        type=rate,
        default=None,
        metavar="RATE",
        help="dropout rate after each hidden activation (default: 0.5 cnn; "
        "0.3 mlp on digits, 0 on other data)",
    )
    p.add_argument(
        "--input-dropout",
        type=rate,
        default=None,
        metavar="RATE",
        help="mlp: dropout rate on the input features (default 0.2 on digits, "
        "0 on other data)",
    )
    p.add_argument(
        "--residual",
        action="store_true",
        help="mlp: residual connections around equal-width hidden blocks",
    )


#: Preset entries that go with the preset's optimizer only (``jaxbp.cli.train``
#: resolves them once the optimizer is known).
OPTIMIZER_PRESETS = ("weight_decay", "beta2", "decay_matrices_only")


def resolve_dataset_and_model(args) -> None:
    """``--dataset`` and ``--model`` left unset: a language model implies
    ``--dataset text``, ``--dataset text`` the LSTM; otherwise digits and the MLP."""
    if args.dataset is None:
        args.dataset = TEXT if args.model in recipes.TEXT_MODELS else "digits"
    if args.model is None:
        args.model = "lstm" if args.dataset == TEXT else "mlp"


def apply_presets(args) -> None:
    """Fill the flags left unset with the chosen model's preset for the
    dataset (``recipes.preset``: the MLP's dropout is digits' only).

    ``weight_decay`` is left alone: it goes with the preset's optimizer only
    (``jaxbp.cli.train`` resolves it once the optimizer is known), and
    ``gradcheck`` gets no training entries.
    """
    resolve_dataset_and_model(args)
    if args.activation is None and args.model not in recipes.TEXT_MODELS:
        args.activation = "relu"
    training = args.command == "train"
    for name, value in recipes.preset(args.model, args.dataset).items():
        if name in OPTIMIZER_PRESETS or (
            name in recipes.TRAINING_PRESETS and not training
        ):
            continue
        if name == "batch_size":  # None means "full", so unset is "absent"
            unset = not hasattr(args, name)
        else:
            unset = getattr(args, name, None) is None
        if unset:
            setattr(args, name, value)


#: Flags that build an mlp or a cnn, not a language model.
NOT_FOR_TEXT_MODELS = (
    "channels",
    "activation",
    "init",
    "init_std",
    "batchnorm",
    "dropout",
    "input_dropout",
)
#: Flags of the language models only.
TEXT_MODEL_FLAGS = (
    "embed_dim",
    "block_size",
    "text_file",
    "layers",
    "heads",
    "width",
    "remat",
)
#: Flags of the recurrent language models only, and of the GPT only.
RECURRENT_ONLY = ("hidden", "embed_dim")
GPT_ONLY = ("layers", "heads", "width", "remat")


def flag(name: str) -> str:
    """The flag of an argument name: ``embed_dim`` -> ``--embed-dim``."""
    return "--" + name.replace("_", "-")


def check_text_model_flags(args) -> None:
    """``--dataset text`` goes with rnn, lstm or gru, and they with it only;
    an mlp/cnn flag given to a language model (or the reverse) is a UsageError."""
    text_model = args.model in recipes.TEXT_MODELS
    if (args.dataset == TEXT) != text_model:
        raise UsageError(
            f"--model {args.model} does not fit --dataset {args.dataset}: "
            f"--dataset text trains {', '.join(recipes.TEXT_MODELS)} (character "
            f"language models), which train on --dataset text only"
        )
    if not text_model:
        _refuse(args, TEXT_MODEL_FLAGS, "rnn, lstm, gru and gpt")
    elif args.model == "gpt":
        _refuse(args, [n for n in NOT_FOR_TEXT_MODELS if n != "dropout"], "mlp and cnn")
        _refuse(args, RECURRENT_ONLY, "mlp, cnn, rnn, lstm and gru (gpt: --width)")
    else:
        _refuse(args, NOT_FOR_TEXT_MODELS, "mlp and cnn")
        _refuse(args, GPT_ONLY, "gpt")
    if text_model and args.residual:
        raise UsageError("--residual applies to --model mlp only")
    if text_model and args.loss not in (None, "cross_entropy"):
        raise UsageError(
            f"--loss {args.loss}: a language model is trained with cross_entropy "
            "over the next character"
        )


def _refuse(args, names, models: str) -> None:
    """A UsageError for the first of ``names`` given: it applies to ``models``."""
    for name in names:
        if getattr(args, name, None) not in (None, False):
            raise UsageError(f"{flag(name)} applies to --model {models} only")


def check_model_flags(args) -> None:
    """Raise :class:`UsageError` for model flags that contradict each other."""
    check_text_model_flags(args)
    if args.model in recipes.TEXT_MODELS:
        if args.data_dir is not None:
            raise UsageError(
                "--data-dir applies to --dataset mnist or "
                "fashion_mnist only; --dataset text reads --text-file"
            )
        return
    images = args.dataset in data.IMAGE_DATASETS
    if args.model == "cnn" and not images:
        raise UsageError(
            f"--model cnn needs image data (--dataset "
            f"{' or '.join(data.IMAGE_DATASETS)}); {args.dataset} is not images"
        )
    if args.model != "cnn" and args.channels is not None:
        raise UsageError("--channels applies to --model cnn only")
    if args.model == "cnn" and args.residual:
        raise UsageError("--residual applies to --model mlp only")
    if args.model == "cnn" and args.input_dropout:
        raise UsageError("--input-dropout applies to --model mlp only")
    if args.init_std is not None and args.init != "normal":
        raise UsageError("--init-std applies to --init normal only")
    if args.dataset not in data.FILE_DATASETS and args.data_dir is not None:
        raise UsageError(
            f"--data-dir applies to --dataset {' or '.join(data.FILE_DATASETS)} "
            f"only; --dataset {args.dataset} is built in (drop --data-dir)"
        )
    if args.dataset in data.FILE_DATASETS and args.data_dir is None:
        raise UsageError(
            f"--dataset {args.dataset} needs --data-dir DIR: the directory holding "
            f"{', '.join(data.MNIST_FILES.values())} (plain or .gz)"
        )


def check_writable_directory(flag: str, path) -> None:
    """Raise UsageError unless ``path`` is, or can be made, a writable directory:
    it (or its nearest existing parent) must be a directory we may write in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: {existing} is not writable")
