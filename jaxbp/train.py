"""Training: a pure train step, an epoch as one ``lax.scan``, ``fit`` and vmappable runs.

::

    result = fit(model, (x, y), (x_val, y_val), optimizer=optim.adam(1e-3),
                 batch_size=32, epochs=100, patience=10, checkpoint_dir="ckpt")
    loss, accuracy = evaluate(model, result.params, result.state, x_test, y_test,
                              loss="cross_entropy")

    train = make_train_fn(model, x, y, optimizer_fn=optim.adam, epochs=50)
    runs = jax.jit(jax.vmap(jax.vmap(train, (None, 0)), (0, None)))(keys, lrs)

**The step.** One step on a mini-batch ``(x_b, y_b)`` with parameters ``θ``::

    L, g   = loss and gradient on the batch   (manual backprop or autodiff)
    L     += ½ λ Σ_W ‖W‖² ;  g_W += λ W       (weight_decay λ; weights only,
                                                see jaxbp.regularization)
    u, s   = optimizer.update(g, s, θ)        (chain(clip_by_global_norm(c),
                                                optimizer) with clip_norm c)
    θ      = θ + u

The optimizer is any optax-protocol ``GradientTransformation``: ``jaxbp.optim``'s
or optax's. Clipping acts on the whole gradient, L2 term included. The model's
state (batch norm's running statistics) is threaded through every step, and
every step gets its own PRNG key (dropout).

**The epoch** is one compiled ``lax.scan`` over the mini-batches. Keys are
derived, never stored as a stream: ``seed`` gives ``key = jax.random.key(seed)``,
split into ``init_key`` (the parameters) and ``train_key``; epoch ``e``
(1-based) uses ``fold_in(train_key, e)``, split into a permutation key and one
key per step. So any epoch can be recomputed, and a resumed run is the same as
an uninterrupted one. Each epoch draws a fresh permutation of the ``n``
training examples and cuts it into ``n // batch_size`` batches of exactly
``batch_size``; the ``n % batch_size`` examples left over at the end of the
permutation are **not used in that epoch** (every batch has the same size, so
one compiled step serves all, and every example gets the same weight). As the
permutation changes every epoch, different examples are left out each time,
and every example is used on average ``1 − (n mod b)/n`` of the epochs.
``batch_size=None`` (or ``n``) is full-batch gradient descent: one step per
epoch on all examples in their given order (no shuffle: the gradient is the
same in any order). ``batch_size=1`` is stochastic gradient descent.

**Reported numbers.** ``train_loss`` is the mean over the epoch's steps of the
training objective (data loss plus the L2 penalty, if any) on each batch,
taken *before* that step's update, in training mode (as Keras and PyTorch
report it). ``val_loss`` / ``val_accuracy`` are computed after the epoch, in
evaluation mode, on the whole validation set. Accuracy is the argmax for
several outputs, the sign of the one output for ``binary_cross_entropy`` and
``hinge`` (threshold 0 on the logit), and ``None`` for ``mse``.

**Checkpoints and resume.** With ``checkpoint_dir``, :func:`fit` saves at
epoch boundaries everything a run depends on (parameters, model state,
optimizer state, the PRNG key, the epoch, the history and the early-stopping
state; see ``jaxbp.checkpoint`` for the format, and why not orbax), and
``resume=True`` continues from the newest checkpoint: since every epoch's
randomness comes from ``fold_in(train_key, epoch)``, the resumed run's final
parameters and history are bit-identical to an uninterrupted run's.

**Data parallel.** ``devices=k`` splits every batch across ``k`` devices
(``jax.sharding``: parameters replicated, the batch sharded; XLA inserts the
gradient all-reduce), the same maths up to the order of the sums.

**Failure.** A non-finite training loss stops :func:`fit` with
:class:`TrainingDiverged` (a ``ValueError``) naming the epoch and the first
bad step; nothing is checkpointed for that epoch, and the last good epoch's
checkpoint is on disk before the error is raised.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import backprop as bp
from jaxbp import checkpoint as ckpt
from jaxbp import losses, optim
from jaxbp.checks import choose
from jaxbp.model import Model
from jaxbp.regularization import add_l2_grad, l2_penalty

__all__ = [
    "FitResult",
    "TrainRun",
    "TrainState",
    "TrainingDiverged",
    "evaluate",
    "fit",
    "make_epoch",
    "make_optimizer",
    "make_step",
    "make_train_fn",
    "train_keys",
]


class TrainState(NamedTuple):
    """What a train step carries: parameters, model state, optimizer state."""

    params: Any
    state: Any
    opt_state: Any


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``params``/``state``: the final model (the best epoch's when ``patience``
    is set). ``history``: one record per epoch (see :func:`fit`).
    ``best_epoch``: the epoch with the lowest validation loss (the last epoch
    when there is no validation set). ``stopped_early``: whether ``patience``
    ended training. ``opt_state``: the optimizer state that goes with ``params``.
    """

    params: Any
    state: Any
    history: list
    best_epoch: int
    stopped_early: bool
    opt_state: Any


class TrainRun(NamedTuple):
    """What a :func:`make_train_fn` run returns (arrays; leading axes under vmap).

    ``train_loss``, ``val_loss``, ``val_accuracy`` have one entry per epoch;
    the ``val_*`` are NaN without a validation set, ``val_accuracy`` is NaN
    for ``mse``.
    """

    params: Any
    state: Any
    train_loss: jax.Array
    val_loss: jax.Array
    val_accuracy: jax.Array


class TrainingDiverged(ValueError):
    """The training loss (or the parameters) became NaN or infinite.

    Attributes: ``epoch`` and ``step`` (1-based, the step within the epoch),
    ``loss`` (the bad value), ``history`` (records of the good epochs) and
    ``checkpoint`` (path of the last good checkpoint, or None).
    """

    def __init__(self, message, *, epoch, step, loss, history, checkpoint=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.history = history
        self.checkpoint = checkpoint


# ---------------------------------------------------------------- building blocks


def train_keys(key):
    """``(init_key, train_key)`` from a run's key: parameters, then the epochs."""
    init_key, train_key = jax.random.split(key)
    return init_key, train_key


def _check_optimizer(optimizer):
    if not (
        callable(getattr(optimizer, "init", None))
        and callable(getattr(optimizer, "update", None))
    ):
        raise ValueError(  # noqa: TRY004 (bad input is a ValueError throughout jaxbp)
            "optimizer must be a GradientTransformation (jaxbp.optim or optax, "
            f"with init and update); got {type(optimizer).__name__}"
        )


def make_optimizer(optimizer, *, clip_norm=None):
    """``chain(clip_by_global_norm(clip_norm), optimizer)``, or ``optimizer``
    itself when ``clip_norm`` is None: the transformation :func:`fit` applies
    (its ``init`` makes the optimizer state a step carries)."""
    _check_optimizer(optimizer)
    if clip_norm is None:
        return optimizer
    _check_hyperparameters(0.0, clip_norm)
    return optim.chain(optim.clip_by_global_norm(clip_norm), optimizer)


def make_step(
    model: Model,
    loss: str,
    optimizer,
    *,
    backprop: str = "manual",
    weight_decay: float = 0.0,
    batch_sharding=None,
):
    """A pure train step ``step(train_state, x_b, t_b, key) -> (train_state, loss)``.

    ``t_b`` are *prepared* targets (``backprop.prepare``: one-hot rows for
    integer classes); ``key`` is the step's PRNG key (or None for a model
    without random layers). The returned loss is the objective before the
    update (data loss plus ½λΣ‖W‖²). ``optimizer`` is used as given: for
    clipping pass ``make_optimizer(optimizer, clip_norm=c)``, and build
    ``train_state.opt_state`` with the same transformation's ``init``.
    ``batch_sharding`` (data parallelism) constrains the batch's sharding.
    ``weight_decay`` may be an array, also a traced one (to ``jax.vmap`` over
    L2 strengths); a Python 0 leaves the penalty out of the program.
    Compile the step with ``jax.jit`` or run it inside ``lax.scan``.
    """
    choose(backprop, bp.BACKPROPS, "backprop")
    # a concrete number (or None) can be tested; an array, maybe traced, is
    # applied as is
    decay = weight_decay is not None and not (
        isinstance(weight_decay, numbers.Number) and weight_decay == 0
    )
    loss_fn = losses.get(loss)
    _check_optimizer(optimizer)
    tx = optimizer
    grad_fn = (
        bp.manual_loss_and_grad if backprop == "manual" else bp.autodiff_loss_and_grad
    )

    def step(train_state: TrainState, xb, tb, key):
        params, state, opt_state = train_state
        if batch_sharding is not None:
            xb = jax.lax.with_sharding_constraint(xb, batch_sharding)
            tb = jax.lax.with_sharding_constraint(tb, batch_sharding)
        result = grad_fn(model, loss_fn, params, state, xb, tb, key=key, train=True)
        value, grads = result.value, result.grads
        if decay:
            value = value + l2_penalty(params, weight_decay).astype(value.dtype)
            grads = add_l2_grad(grads, params, weight_decay)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
        return TrainState(params, result.state, opt_state), value

    return step


def _batch_size(batch_size, n: int) -> int:
    if batch_size is None:
        return n
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or not 1 <= batch_size <= n
    ):
        raise ValueError(
            f"batch_size must be None (full batch) or an integer in [1, {n}] "
            f"(at most the training set size {n}); got {batch_size!r}"
        )
    return int(batch_size)


def make_epoch(step, n: int, batch_size: int | None):
    """An epoch as one ``lax.scan`` of ``step`` over shuffled mini-batches.

    ``epoch(train_state, x, t, train_key, epoch) -> (train_state, step_losses)``
    where ``epoch`` is the 1-based epoch number; its key is
    ``fold_in(train_key, epoch)``. ``n // batch_size`` steps; the remainder of
    the permutation is left out this epoch (see the module docstring).
    """
    batch_size = _batch_size(batch_size, n)
    num_steps = n // batch_size
    full_batch = batch_size == n

    def epoch_fn(train_state, x, t, train_key, epoch):
        epoch_key = jax.random.fold_in(train_key, jnp.asarray(epoch, jnp.uint32))
        perm_key, steps_key = jax.random.split(epoch_key)
        step_keys = jax.random.split(steps_key, num_steps)
        if full_batch:
            # One step on everything, in the given order: no gather needed.
            train_state, value = step(train_state, x, t, step_keys[0])
            return train_state, value[None]
        order = jax.random.permutation(perm_key, jnp.arange(n, dtype=jnp.int32))
        batches = order[: num_steps * batch_size].reshape(num_steps, batch_size)

        def body(carry, batch):
            index, key = batch
            xb = jnp.take(x, index, axis=0)
            tb = jnp.take(t, index, axis=0)
            return step(carry, xb, tb, key)

        return jax.lax.scan(body, train_state, (batches, step_keys))

    return epoch_fn


# ---------------------------------------------------------------- evaluation


def _predict(model, params, state, x, batch_size):
    """Eval-mode outputs for all of ``x``, ``batch_size`` examples at a time."""
    n = x.shape[0]
    if batch_size is None or batch_size >= n:
        return model.apply(params, x, state=state, train=False)
    chunks = -(-n // batch_size)
    pad = chunks * batch_size - n
    padded = jnp.concatenate([x, jnp.zeros((pad, *x.shape[1:]), x.dtype)])
    padded = padded.reshape(chunks, batch_size, *x.shape[1:])
    out = jax.lax.map(
        lambda xb: model.apply(params, xb, state=state, train=False), padded
    )
    return out.reshape(chunks * batch_size, *out.shape[2:])[:n]


def _accuracy(loss: str, out, target):
    """Fraction correct: argmax for several outputs, sign for one; None for mse."""
    if loss == "mse":
        return None
    if out.ndim == 1 or out.shape[-1] == 1:
        right = (out.reshape(-1) > 0) == (target.reshape(-1) > 0.5)
    else:
        right = jnp.argmax(out, axis=-1) == jnp.argmax(target, axis=-1)
    return jnp.mean(right.astype(out.dtype))


def _metrics(model, loss, params, state, x, t, batch_size):
    out = _predict(model, params, state, x, batch_size)
    value = losses.get(loss).value(out, t)
    accuracy = _accuracy(loss, out, t)
    if accuracy is None:
        accuracy = jnp.full((), jnp.nan, value.dtype)
    return value, accuracy


_metrics_jit = jax.jit(_metrics, static_argnames=("model", "loss", "batch_size"))


def evaluate(model, params, state, x, y, *, loss="cross_entropy", batch_size=None):
    """``(loss, accuracy)`` of the model on ``(x, y)`` in evaluation mode.

    Python floats; ``accuracy`` is None for ``mse``. ``state=None`` uses the
    model's initial state. ``batch_size`` bounds how many examples go through
    the model at once (the result does not depend on it, up to rounding).
    """
    x, t, _, state = bp.prepare(model, params, x, y, loss, state)
    _check_int("batch_size", batch_size, 1, allow_none=True)
    value, accuracy = _metrics_jit(model, loss, params, state, x, t, batch_size)
    value, accuracy = jax.device_get((value, accuracy))
    return float(value), (None if loss == "mse" else float(accuracy))


# ---------------------------------------------------------------- fit


def _all_finite(tree):
    leaves = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(leaf.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_int(name, value, low, *, allow_none=False):
    if allow_none and value is None:
        return
    if not (_is_int(value) and value >= low):
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= {low}{none}; got {value!r}")


def _check_hyperparameters(weight_decay, clip_norm):
    if not (_is_real(weight_decay) and weight_decay >= 0):
        raise ValueError(
            f"weight_decay must be a finite number >= 0; got {weight_decay!r}"
        )
    if clip_norm is not None and not (_is_real(clip_norm) and clip_norm > 0):
        raise ValueError(
            f"clip_norm must be a finite number > 0 or None; got {clip_norm!r}"
        )


def _data_parallel(devices):
    """``(batch_sharding, replicated)`` for ``devices`` > 1, else ``(None, None)``."""
    _check_int("devices", devices, 1)
    if devices == 1:
        return None, None
    available = jax.devices()
    if devices > len(available):
        raise ValueError(
            f"devices={devices} asked for, but only {len(available)} "
            f"{available[0].platform} device(s) are available"
        )
    mesh = jax.sharding.Mesh(np.array(available[:devices]), ("data",))
    spec = jax.sharding.PartitionSpec
    return (
        jax.sharding.NamedSharding(mesh, spec("data")),
        jax.sharding.NamedSharding(mesh, spec()),
    )


def _record(epoch, train_loss, train_accuracy, val_loss, val_accuracy, has_val, loss):
    classification = loss != "mse"
    return {
        "epoch": epoch,
        "train_loss": float(train_loss),
        "val_loss": float(val_loss) if has_val else None,
        "val_accuracy": (float(val_accuracy) if has_val and classification else None),
        "train_accuracy": float(train_accuracy) if classification else None,
    }


def _best_epoch(history) -> int:
    """The epoch of the lowest validation loss (first of ties); the last epoch
    without validation."""
    best, best_loss = (history[-1]["epoch"] if history else 0), math.inf
    if history and history[0]["val_loss"] is not None:
        for record in history:
            if record["val_loss"] < best_loss:  # NaN never improves
                best, best_loss = record["epoch"], record["val_loss"]
    return best


def fit(
    model: Model,
    train,
    val=None,
    *,
    loss: str = "cross_entropy",
    optimizer,
    backprop: str = "manual",
    batch_size: int | None = 32,
    epochs: int = 100,
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    patience: int | None = None,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callback: Callable[[dict], Any] | None = None,
    devices: int = 1,
    keep_checkpoints: int = 2,
    checkpoint_every: int = 1,
    eval_batch_size: int | None = None,
) -> FitResult:
    """Train ``model`` on ``train = (x, y)`` for ``epochs`` epochs; return a :class:`FitResult`.

    Args:
      train, val: ``(x, y)`` pairs (e.g. ``jaxbp.data.Split``); labels as the
        loss takes them (integer classes or one-hot rows for cross-entropy).
      loss: a loss name (``jaxbp.losses``).
      optimizer: a ``GradientTransformation`` from ``jaxbp.optim`` or optax.
      backprop: ``"manual"`` (hand-written backward pass) or ``"autodiff"``.
      batch_size: examples per step; ``None`` for full batch; at most ``n``.
        The ``n % batch_size`` examples left over by each epoch's permutation
        are not used that epoch (see the module docstring).
      weight_decay: λ of the L2 penalty ½λΣ‖W‖² on weight matrices/kernels
        (``dW += λW``), not biases or normalisation parameters.
      clip_norm: clip the gradient to this global norm (before the optimizer).
      patience: early stopping: stop after ``patience`` epochs without a lower
        validation loss, and return the best epoch's parameters (needs ``val``).
        With ``patience`` set the best epoch's parameters are returned even
        when training runs to ``epochs``.
      seed: an integer in [0, 2**32): parameters, shuffling and dropout keys.
        The same seed gives bit-identical results.
      checkpoint_dir: checkpoint after every ``checkpoint_every``-th epoch and
        the last one: params, model state, optimizer state, PRNG key, epoch,
        history and early-stopping state (``jaxbp.checkpoint``: atomic, no
        pickle; the newest ``keep_checkpoints`` are kept). Saves run in a
        background thread so training never waits for ``fsync``; when epochs
        are faster than the disk, a save still waiting is replaced by the next
        epoch's, so not every epoch is written, but the last epoch always is
        (before ``fit`` returns or raises), and on divergence the last good
        one. The directory must hold no checkpoints unless ``resume``.
      resume: continue from the newest checkpoint in ``checkpoint_dir`` (start
        afresh when there is none). The result and history are bit-identical
        to a run never interrupted. ``epochs`` may be raised to train on.
      callback: ``callback(record)`` after each epoch (after its checkpoint),
        with ``record = {"epoch": int (1-based), "train_loss": float,
        "val_loss": float | None, "val_accuracy": float | None,
        "train_accuracy": float | None}`` (val_* None when there is no
        ``val``; accuracies None for ``mse``). ``train_loss`` is the mean of
        the epoch's step losses; ``train_accuracy`` is measured on the whole
        training set in evaluation mode after the epoch.
      devices: data-parallel training over this many devices (the batch is
        split across them; ``batch_size`` must be divisible by ``devices``).
      eval_batch_size: evaluate the validation set this many examples at a time.

    Raises:
      TrainingDiverged: the training loss became non-finite (names the epoch
        and step; the last good checkpoint is kept).
      ValueError: bad arguments, or a checkpoint that does not match.
    """
    choose(backprop, bp.BACKPROPS, "backprop")
    losses.get(loss)
    _check_optimizer(optimizer)
    _check_int("epochs", epochs, 1)
    _check_hyperparameters(weight_decay, clip_norm)
    _check_int("patience", patience, 1, allow_none=True)
    _check_int("keep_checkpoints", keep_checkpoints, 1)
    _check_int("checkpoint_every", checkpoint_every, 1)
    _check_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
    if not (_is_int(seed) and 0 <= seed < 2**32):
        raise ValueError(f"seed must be an integer in [0, 2**32); got {seed!r}")
    if patience is not None and val is None:
        raise ValueError("patience (early stopping) needs a validation set (val)")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")
    batch_sharding, replicated = _data_parallel(devices)

    init_key, train_key = train_keys(jax.random.key(seed))
    params, state = model.init_with_state(init_key)
    x, t, _, state = bp.prepare(model, params, *_pair(train, "train"), loss, state)
    n = x.shape[0]
    batch = _batch_size(batch_size, n)
    if batch % devices:
        raise ValueError(
            f"batch_size {batch} must be divisible by devices={devices} "
            "(each device takes an equal share of every batch)"
        )
    has_val = val is not None
    if has_val:
        xv, tv, _, _ = bp.prepare(model, params, *_pair(val, "val"), loss, state)
    else:
        xv = tv = None

    tx = make_optimizer(optimizer, clip_norm=clip_norm)
    opt_state = tx.init(params)
    compile_args = (
        model,
        loss,
        optimizer,
        clip_norm,
        backprop,
        float(weight_decay),
        n,
        batch,
        eval_batch_size,
        batch_sharding,
    )
    try:
        epoch_and_eval = _compiled_epoch(*compile_args)
    except TypeError:  # an unhashable optimizer: compile without the cache
        epoch_and_eval = _compiled_epoch.__wrapped__(*compile_args)

    current = TrainState(params, state, opt_state)
    config = {
        "seed": int(seed),
        "n_train": int(n),
        "batch_size": int(batch),
        "loss": loss,
        "backprop": backprop,
        "weight_decay": float(weight_decay),
        "clip_norm": None if clip_norm is None else float(clip_norm),
        "patience": patience,
        "validation": has_val,
    }
    history: list[dict] = []
    best = current if patience is not None else None
    best_loss, best_epoch, stopped_early, start = math.inf, 0, False, 1
    last_checkpoint = None

    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        last_checkpoint = ckpt.latest(checkpoint_dir)
        if last_checkpoint is not None and not resume:
            raise ValueError(
                f"checkpoint directory {checkpoint_dir} already holds checkpoints "
                f"(newest {last_checkpoint.name}); pass resume=True to continue "
                "from it, or use an empty directory"
            )
        if last_checkpoint is not None:
            template = _checkpoint_tree(current, train_key, best)
            tree, meta = ckpt.load(last_checkpoint, template)
            _check_config(meta.get("config", {}), config, last_checkpoint)
            current = TrainState(**tree["train_state"])
            train_key, best = tree["key"], tree["best"]
            if best is not None:
                best = TrainState(**best)
            history = meta["history"]
            best_loss = meta["best_val_loss"]
            best_epoch = meta["best_epoch"]
            stopped_early = meta["stopped_early"]
            start = meta["epoch"] + 1

    if replicated is not None:
        current, best, train_key, x, t, xv, tv = jax.device_put(
            (current, best, train_key, x, t, xv, tv), replicated
        )

    saver = None
    if checkpoint_dir is not None:
        saver = ckpt.BackgroundSaver(checkpoint_dir, keep=keep_checkpoints)
    try:
        for epoch in range(start, epochs + 1):
            if stopped_early:
                break
            new, step_losses, train_loss, finite, metrics = epoch_and_eval(
                current, x, t, train_key, np.uint32(epoch), xv, tv
            )
            step_losses, train_loss, finite, metrics = jax.device_get(
                (step_losses, train_loss, finite, metrics)
            )
            train_accuracy, val_loss, val_accuracy = metrics
            if not (np.all(np.isfinite(step_losses)) and finite):
                if saver is not None:  # the last good epoch is on disk first
                    last_checkpoint = saver.flush() or last_checkpoint
                _diverged(epoch, step_losses, history, last_checkpoint)
            current = new
            record = _record(
                epoch, train_loss, train_accuracy, val_loss, val_accuracy, has_val, loss
            )
            history.append(record)
            if has_val and record["val_loss"] < best_loss:
                best_loss, best_epoch = record["val_loss"], epoch
                if patience is not None:
                    best = current
            elif patience is not None and epoch - best_epoch >= patience:
                stopped_early = True
            due = epoch % checkpoint_every == 0 or epoch == epochs or stopped_early
            if saver is not None and due:
                saver.request(
                    epoch,
                    _checkpoint_tree(current, train_key, best),
                    {
                        "epoch": epoch,
                        "history": history,
                        "best_val_loss": best_loss,
                        "best_epoch": best_epoch,
                        "stopped_early": stopped_early,
                        "config": config,
                    },
                )
            if callback is not None:
                callback(dict(record))
    except BaseException:
        if saver is not None:  # keep what was asked for, but raise the cause
            with contextlib.suppress(Exception):
                saver.close()
        raise
    if saver is not None:
        saver.close()

    final = best if patience is not None else current
    return FitResult(
        params=final.params,
        state=final.state,
        history=history,
        best_epoch=_best_epoch(history),
        stopped_early=stopped_early,
        opt_state=final.opt_state,
    )


@functools.lru_cache(maxsize=16)
def _compiled_epoch(
    model,
    loss,
    optimizer,
    clip_norm,
    backprop,
    weight_decay,
    n,
    batch,
    eval_batch_size,
    batch_sharding,
):
    """The jitted ``epoch + validation`` of :func:`fit`, cached so that fits with
    the same model, optimizer object and settings compile once per process."""
    step = make_step(
        model,
        loss,
        make_optimizer(optimizer, clip_norm=clip_norm),
        backprop=backprop,
        weight_decay=weight_decay,
        batch_sharding=batch_sharding,
    )
    run_epoch = make_epoch(step, n, batch)

    def epoch_and_eval(train_state, x, t, train_key, epoch, xv, tv):
        train_state, step_losses = run_epoch(train_state, x, t, train_key, epoch)
        finite = _all_finite((train_state.params, train_state.state))
        trained = (model, loss, *train_state[:2])
        _, train_accuracy = _metrics(*trained, x, t, eval_batch_size)
        if xv is None:
            val_loss = val_accuracy = jnp.nan
        else:
            val_loss, val_accuracy = _metrics(*trained, xv, tv, eval_batch_size)
        metrics = (train_accuracy, val_loss, val_accuracy)
        return train_state, step_losses, jnp.mean(step_losses), finite, metrics

    return jax.jit(epoch_and_eval)


def _pair(split, name):
    try:
        x, y = split
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an (x, y) pair such as jaxbp.data.Split; "
            f"got {type(split).__name__}"
        ) from None
    return x, y


def _checkpoint_tree(train_state, train_key, best):
    return {
        "train_state": train_state._asdict(),
        "key": train_key,
        "best": None if best is None else best._asdict(),
    }


def _check_config(stored: dict, current: dict, path) -> None:
    different = {
        k: (stored.get(k), v) for k, v in current.items() if stored.get(k) != v
    }
    if different:
        details = ", ".join(
            f"{k}: checkpoint {old!r}, now {new!r}"
            for k, (old, new) in different.items()
        )
        raise ValueError(
            f"cannot resume from {path}: it was written with other settings ({details})"
        )


def _diverged(epoch, step_losses, history, last_checkpoint):
    bad = np.flatnonzero(~np.isfinite(step_losses))
    num_steps = len(step_losses)
    if bad.size:
        step, value = int(bad[0]) + 1, float(step_losses[bad[0]])
        what = f"non-finite training loss ({value}) at epoch {epoch}, step {step}"
    else:
        step, value = num_steps, float("nan")
        what = (
            f"non-finite parameters after epoch {epoch}, step {step} "
            "(the update of the last step overflowed)"
        )
    kept = (
        f"; the last good checkpoint is {last_checkpoint}"
        if last_checkpoint is not None
        else ""
    )
    raise TrainingDiverged(
        f"training diverged: {what} of {num_steps}; try a smaller learning rate "
        f"or clip_norm{kept}",
        epoch=epoch,
        step=step,
        loss=value,
        history=list(history),
        checkpoint=last_checkpoint,
    )


# ---------------------------------------------------------------- vmappable runs


def make_train_fn(
    model: Model,
    x,
    y,
    *,
    loss: str = "cross_entropy",
    optimizer_fn: Callable[[Any], Any],
    batch_size: int | None = 32,
    epochs: int = 100,
    backprop: str = "manual",
    weight_decay: float = 0.0,
    clip_norm: float | None = None,
    val=None,
):
    """A pure, jitted ``train(key, learning_rate) -> TrainRun`` to ``jax.vmap`` over.

    A whole run is one compiled program: init from ``key`` (split as in
    :func:`fit`, so ``train(jax.random.key(s), lr)`` is ``fit(seed=s)``'s run
    without early stopping), then a ``lax.scan`` over epochs, each a
    ``lax.scan`` over mini-batches (:func:`make_epoch`). ``optimizer_fn(lr)``
    builds the optimizer (``jaxbp.optim.adam``, ``optax.sgd``, a lambda...);
    ``learning_rate`` may be any pytree of hyperparameters ``optimizer_fn``
    takes; its leaves are cast to the model's dtype. Vmapping over keys and
    learning rates trains many models in one program::

        train = make_train_fn(model, x, y, optimizer_fn=optim.sgd, epochs=20)
        runs = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, 0.1)   # seeds
        runs = jax.vmap(jax.vmap(train, (None, 0)), (0, None))(keys, lrs)  # grid

    A vmapped run computes what the separate run computes, but XLA compiles
    the batched program differently (batched matmuls, other fusions), so the
    results agree to float32 rounding (grown over the steps), not always bit
    for bit. The data (``x, y``, ``val``) is part of the compiled program.
    Nothing raises inside it: a diverging run shows NaN/inf losses.
    """
    choose(backprop, bp.BACKPROPS, "backprop")
    losses.get(loss)
    _check_int("epochs", epochs, 1)
    _check_hyperparameters(weight_decay, clip_norm)
    x, t, _, _ = bp.prepare(model, None, x, y, loss, model.init_state())
    n = x.shape[0]
    batch = _batch_size(batch_size, n)
    if val is not None:
        xv, tv, _, _ = bp.prepare(
            model, None, *_pair(val, "val"), loss, model.init_state()
        )

    def train(key, learning_rate) -> TrainRun:
        init_key, train_key = train_keys(key)
        params, state = model.init_with_state(init_key)
        hyper = jax.tree.map(lambda v: jnp.asarray(v, model.dtype), learning_rate)
        tx = make_optimizer(optimizer_fn(hyper), clip_norm=clip_norm)
        step = make_step(model, loss, tx, backprop=backprop, weight_decay=weight_decay)
        run_epoch = make_epoch(step, n, batch)

        def one_epoch(train_state, epoch):
            train_state, step_losses = run_epoch(train_state, x, t, train_key, epoch)
            if val is None:
                nan = jnp.full((), jnp.nan, model.dtype)
                metrics = (nan, nan)
            else:
                metrics = _metrics(model, loss, *train_state[:2], xv, tv, None)
            return train_state, (jnp.mean(step_losses), *metrics)

        start = TrainState(params, state, tx.init(params))
        epoch_numbers = jnp.arange(1, epochs + 1, dtype=jnp.uint32)
        final, (train_loss, val_loss, val_accuracy) = jax.lax.scan(
            one_epoch, start, epoch_numbers
        )
        return TrainRun(final.params, final.state, train_loss, val_loss, val_accuracy)

    return jax.jit(train)
