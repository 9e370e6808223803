"""Ready-made choices by name: the models, optimizers, losses and presets of ``jaxbp train``.

What the command line builds from its flags, as a library (the experiments
use it too)::

    ds = data.load("digits", images=True)
    model = recipes.model("cnn", ds)                       # the CNN preset
    tx = recipes.optimizer("adamw", learning_rate=2e-3, schedule="cosine",
                           steps=40 * 44, weight_decay=1.0)
    y = recipes.targets(ds, ds.train, recipes.default_loss(ds))

``PRESETS`` holds each model's defaults: what ``jaxbp train --model NAME``
uses for the flags left unset, and what :func:`model` uses for the arguments
left None. Bad arguments raise a ValueError naming the argument.
"""

from __future__ import annotations

import math

import numpy as np

from jaxbp import initializers
from jaxbp import layers as L
from jaxbp.checks import check_int, choose, is_finite_number
from jaxbp.model import cnn as build_cnn
from jaxbp.model import mlp as build_mlp
from jaxbp.model import sequential
from jaxbp.regularization import l2_mask

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
IMPLS = ("jaxbp", "optax")
#: The character-level language models (``--dataset text``): an embedding,
#: recurrent layers and a dense head over the vocabulary.
RECURRENT_MODELS = ("rnn", "lstm", "gru")
TEXT_MODELS = (*RECURRENT_MODELS, "gpt")
MODELS = ("mlp", "cnn", *TEXT_MODELS)
SCHEDULES = ("constant", "cosine")

#: Defaults per model. The selection of the MLP's and the CNN's is described
#: in the README ("jaxbp train", Targets); the CNN's optimizer and decoupled
#: weight decay were chosen by cross-validation on the training and validation
#: images (``python experiments/cnn_selection.py``).
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
        "optimizer": "adamw",  # decoupled weight decay: weight_decay
        "weight_decay": 1.0,
    },
}

#: The language models' defaults (each of ``TEXT_MODELS``): training is
#: counted in optimizer steps on random windows of ``block_size`` characters,
#: with the validation loss every ``eval_interval`` steps.
TEXT_PRESET = {
    "hidden": (256,),
    "embed_dim": 64,
    "block_size": 64,
    "steps": 2000,
    "eval_interval": 200,
    "eval_batches": 20,
    "batch_size": 32,
    "lr": 2e-3,
    "lr_schedule": "constant",
    "optimizer": "adam",
    "weight_decay": 0.0,
    "clip_norm": 1.0,
}
PRESETS.update(dict.fromkeys(RECURRENT_MODELS, TEXT_PRESET))
#: The GPT's: nanoGPT's published CPU configuration for characters (4 layers,
#: 4 heads, width 128, context 64, batch 12, 2,000 steps, AdamW with β2 0.99
#: and weight decay 0.1 on matrices only, gradients clipped to norm 1, lr 1e-3
#: with 100 warm-up steps and cosine decay to 1e-4, no dropout).
GPT_PRESET = {
    "layers": 4,
    "heads": 4,
    "width": 128,
    "dropout": 0.0,
    "block_size": 64,
    "steps": 2000,
    "eval_interval": 200,
    "eval_batches": 20,
    "batch_size": 12,
    "lr": 1e-3,
    "lr_schedule": "cosine",
    "warmup": 100,
    "min_lr": 1e-4,
    "beta2": 0.99,
    "optimizer": "adamw",
    "weight_decay": 0.1,
    "decay_matrices_only": True,
    "clip_norm": 1.0,
}
PRESETS["gpt"] = GPT_PRESET

#: Preset entries chosen on digits that hold only there: the MLP's dropout
#: (on the 2-D toy sets it keeps the loss at ln 2). Elsewhere they are 0.
DIGITS_ONLY = {
    "mlp": ("input_dropout", "dropout"),
    "cnn": (),
    **{name: () for name in TEXT_MODELS},
}


def preset(name: str, dataset: str) -> dict:
    """``PRESETS[name]`` for the dataset named ``dataset``: the entries of
    ``DIGITS_ONLY`` are 0 on any other dataset."""
    choose(name, MODELS, "model")
    values = dict(PRESETS[name])
    if dataset != "digits":
        values.update(dict.fromkeys(DIGITS_ONLY[name], 0.0))
    return values


#: The preset entries that are training choices (the rest build the model).
TRAINING_PRESETS = (
    "optimizer",
    "weight_decay",
    "batch_size",
    "lr",
    "lr_schedule",
    "epochs",
    "steps",
    "eval_interval",
    "eval_batches",
    "clip_norm",
    "warmup",
    "min_lr",
    "beta2",
    "decay_matrices_only",
)


# ---------------------------------------------------------------- losses and targets


def default_loss(dataset) -> str:
    """``"mse"`` for a regression dataset, ``"cross_entropy"`` for classes."""
    return "mse" if dataset.task == "regression" else "cross_entropy"


def output_size(dataset, loss: str) -> int:
    """The number of model outputs ``loss`` needs on ``dataset``.

    Raises a ValueError when the loss does not fit the dataset: a class loss on
    regression targets, or a 2-class loss on more classes.
    """
    if dataset.task == "regression":
        if loss != "mse":
            raise ValueError(
                f"loss {loss!r} needs class labels; {dataset.name} is a "
                "regression dataset (use 'mse')"
            )
        return dataset.train.y.shape[-1] if dataset.train.y.ndim > 1 else 1
    if loss == "binary_cross_entropy" or (loss == "hinge" and dataset.num_classes == 2):
        if dataset.num_classes != 2:
            raise ValueError(
                f"loss {loss!r} needs a dataset with 2 classes; "
                f"{dataset.name} has {dataset.num_classes}"
            )
        return 1
    return dataset.num_classes


def targets(dataset, split, loss: str):
    """``split``'s labels in the form ``loss`` takes (one-hot rows for mse on classes)."""
    if dataset.task == "classification" and loss == "mse":
        return np.eye(dataset.num_classes, dtype=np.float32)[split.y]
    return split.y


# ---------------------------------------------------------------- optimizers


def total_steps(n_train: int, batch_size: int | None, epochs: int) -> int:
    """Updates in ``epochs`` epochs of ``n_train // batch_size`` steps (None: full batch)."""
    return epochs * (n_train // (batch_size or n_train))


def optimizer(
    name: str,
    *,
    impl: str = "jaxbp",
    learning_rate: float,
    schedule: str = "constant",
    steps: int | None = None,
    weight_decay: float = 0.0,
    warmup: int = 0,
    min_learning_rate: float = 0.0,
    beta2: float | None = None,
    decay_matrices_only: bool = False,
):
    """The optimizer ``name`` (``OPTIMIZERS``) from ``jaxbp.optim`` or optax.

    ``impl="jaxbp"`` (hand-rolled) or ``"optax"``: the same arguments in both.
    ``momentum`` and ``nesterov`` are SGD with momentum 0.9.
    ``schedule="cosine"`` decays the learning rate to ``min_learning_rate``
    (default 0) over ``steps`` updates, after ``warmup`` steps of linear
    warm-up from 0 (``warmup_cosine_decay_schedule``); a constant schedule
    with ``warmup`` ramps up, then stays. ``beta2``: Adam's and AdamW's
    second-moment decay (default theirs, 0.999).
    ``weight_decay`` is decoupled weight decay (AdamW's; the update subtracts
    ``lr * weight_decay * p``), so it is valid with ``"adamw"`` only (any
    other optimizer with a non-zero ``weight_decay`` is a ValueError), on
    every parameter or, with ``decay_matrices_only``, on those of
    ``jaxbp.regularization.l2_mask`` (two or more axes: weights, kernels and
    embedding tables; not biases or normalisation gains, as nanoGPT); a coupled L2 penalty is ``jaxbp.train.fit``'s ``l2=``.
    """
    choose(name, OPTIMIZERS, "optimizer")
    choose(impl, IMPLS, "impl")
    choose(schedule, SCHEDULES, "schedule")
    check_int("warmup", warmup, 0)
    if beta2 is not None and name not in ("adam", "adamw"):
        raise ValueError(f"beta2 applies to adam and adamw only; got {name!r}")
    if not (is_finite_number(learning_rate) and learning_rate > 0):
        raise ValueError(
            f"learning_rate must be a finite number > 0; got {learning_rate!r}"
        )
    if not (is_finite_number(weight_decay) and weight_decay >= 0):
        raise ValueError(
            f"weight_decay must be a finite number >= 0; got {weight_decay!r}"
        )
    if weight_decay and name != "adamw":
        raise ValueError(
            f"weight_decay is decoupled weight decay, for optimizer 'adamw' only; "
            f"got optimizer {name!r} (a coupled L2 penalty is fit's l2=)"
        )
    if impl == "optax":
        import optax as lib
    else:
        from jaxbp import optim as lib
    lr = _learning_rate(lib, learning_rate, schedule, steps, warmup, min_learning_rate)
    adam_options = {} if beta2 is None else {"b2": beta2}
    if name == "sgd":
        return lib.sgd(lr)
    if name == "momentum":
        return lib.sgd(lr, momentum=0.9)
    if name == "nesterov":
        return lib.sgd(lr, momentum=0.9, nesterov=True)
    if name == "adamw":
        mask = l2_mask if decay_matrices_only else None
        return lib.adamw(lr, weight_decay=weight_decay, mask=mask, **adam_options)
    if name == "adam":
        return lib.adam(lr, **adam_options)
    return getattr(lib, name)(lr)


def _learning_rate(lib, peak, schedule, steps, warmup, floor):
    """The learning rate (a number or a schedule of ``lib``)."""
    if not (is_finite_number(floor) and 0 <= floor <= peak):
        raise ValueError(
            f"min_learning_rate must be in [0, learning_rate {peak}]; got {floor!r}"
        )
    if schedule == "cosine":
        check_int("steps", steps, 1)
        if warmup >= steps:
            raise ValueError(f"warmup {warmup} must be fewer than steps {steps}")
        if not warmup:
            return lib.cosine_decay_schedule(peak, steps, alpha=floor / peak)
        return lib.warmup_cosine_decay_schedule(0.0, peak, warmup, steps, floor)
    if warmup:
        ramp = lib.linear_schedule(0.0, peak, warmup)
        return lib.join_schedules([ramp, lib.constant_schedule(peak)], [warmup])
    return peak


# ---------------------------------------------------------------- models


def _initializer(init, init_std):
    if init_std is None:
        return init
    if init != "normal":
        raise ValueError(f"init_std applies to init='normal' only; got init={init!r}")
    if not (is_finite_number(init_std) and init_std > 0):
        raise ValueError(f"init_std must be a finite number > 0; got {init_std!r}")
    return initializers.normal(init_std)


def _cnn(dataset, n_out, *, hidden, channels, activation, init, options, dtype):
    if len(dataset.in_shape) != 3:
        raise ValueError(
            f"model 'cnn' needs image data (data.load(..., images=True)); "
            f"{dataset.name} has examples of shape {dataset.in_shape}"
        )
    if options["residual"] or options["input_dropout"]:
        raise ValueError("residual and input_dropout apply to model 'mlp' only")
    return build_cnn(
        in_shape=dataset.in_shape,
        **({} if channels is None else {"channels": tuple(channels)}),
        num_classes=n_out,
        hidden=hidden[0] if hidden else 0,
        activation=activation,
        init=init,
        dropout=options["dropout"],
        batchnorm=options["batchnorm"],
        dtype=dtype,
    )


def _mlp(dataset, n_out, *, hidden, channels, activation, init, options, dtype):
    if channels is not None:
        raise ValueError("channels applies to model 'cnn' only")
    return build_mlp(
        [math.prod(dataset.in_shape), *hidden, n_out],
        activation,
        init,
        dtype=dtype,
        **options,
    )


def model(
    name: str,
    dataset,
    *,
    loss: str | None = None,
    hidden=None,
    channels=None,
    activation: str = "relu",
    init=None,
    init_std: float | None = None,
    batchnorm: bool | None = None,
    dropout: float | None = None,
    input_dropout: float | None = None,
    residual: bool = False,
    dtype="float32",
):
    """The model ``name`` (``"mlp"`` or ``"cnn"``) built for ``dataset``.

    Its input shape is the dataset's, its output size what ``loss`` (default
    :func:`default_loss`) needs (:func:`output_size`). Arguments left None
    take the model's preset for the dataset (:func:`preset`). ``hidden``: the MLP's hidden sizes,
    or the CNN's one dense layer (``()`` for none); ``channels``: the CNN's
    conv widths (default ``jaxbp.model.cnn``'s). ``init`` a name or an
    initializer (default by activation); ``init_std`` the std of
    ``init="normal"``. ``residual`` and ``input_dropout`` are the MLP's.
    """
    if name in TEXT_MODELS:
        raise ValueError(
            f"model {name!r} is a language model: build it with language_model"
        )
    defaults = preset(name, dataset.name)
    options = {
        "batchnorm": defaults["batchnorm"] if batchnorm is None else batchnorm,
        "dropout": defaults["dropout"] if dropout is None else dropout,
        "residual": residual,
        "input_dropout": defaults["input_dropout"]
        if input_dropout is None
        else input_dropout,
    }
    build = _cnn if name == "cnn" else _mlp
    return build(
        dataset,
        output_size(dataset, loss or default_loss(dataset)),
        hidden=tuple(defaults["hidden"] if hidden is None else hidden),
        channels=channels,
        activation=activation,
        init=_initializer(init, init_std),
        options=options,
        dtype=dtype,
    )


def language_model(
    kind: str,
    vocab_size: int,
    *,
    block_size: int = 64,
    hidden=(256,),
    embed_dim: int = 64,
    layers: int = 4,
    heads: int = 4,
    width: int = 128,
    dropout: float = 0.0,
    remat: bool = False,
    dtype="float32",
):
    """A character-level language model, tokens (B, ``block_size``) -> logits
    (B, T, ``vocab_size``).

    ``kind="gpt"``: ``jaxbp.model.gpt`` with ``layers`` blocks of ``heads``
    heads, width ``width``, ``dropout`` and ``remat`` (checkpointed blocks). Otherwise (``RECURRENT_MODELS``):
    ``embedding(vocab_size, embed_dim)``, one recurrent layer of ``kind`` per
    entry of ``hidden``, each returning every state, and a dense head over the
    vocabulary.
    """
    choose(kind, TEXT_MODELS, "kind")
    check_int("vocab_size", vocab_size, 1)
    check_int("block_size", block_size, 1)
    if kind == "gpt":
        from jaxbp.model import gpt

        return gpt(
            vocab_size,
            block_size=block_size,
            n_layer=layers,
            n_head=heads,
            n_embd=width,
            dropout=dropout,
            remat=remat,
            dtype=dtype,
        )
    check_int("embed_dim", embed_dim, 1)
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError("hidden must name at least one recurrent layer's width")
    recurrent = {"rnn": L.rnn, "lstm": L.lstm, "gru": L.gru}[kind]
    return sequential(
        L.embedding(vocab_size, embed_dim),
        *(
            recurrent(width, return_sequences=True, name=f"{kind}{i}")
            for i, width in enumerate(hidden)
        ),
        L.dense(vocab_size),
        in_shape=(block_size,),
        dtype=dtype,
    )
