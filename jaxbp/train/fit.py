"""fit: train one model epoch by epoch, with validation, early stopping and checkpoints."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from jaxbp import backprop as bp
from jaxbp import executable_cache, losses
from jaxbp.checks import check_int, check_seed, choose, is_finite_number
from jaxbp.compilation import compile_log, programs_per_process
from jaxbp.model import Model
from jaxbp.train import history as hist
from jaxbp.train.evaluate import metrics
from jaxbp.train.loop import run_steps
from jaxbp.train.pairs import prepare_pair
from jaxbp.train.parallel import check_batch_split, data_parallel
from jaxbp.train.resume import background_saver, restore
from jaxbp.train.rounds import RoundData, Run, replicate, train_rounds
from jaxbp.train.schedule import epoch_batches_program, resolve_batch_size, seed_keys
from jaxbp.train.step import (
    check_clip_norm,
    check_optimizer,
    init_train_state,
    make_optimizer,
    make_step,
)


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    ``params``/``state``: the final model (the best epoch's when ``patience``
    is set). ``history``: one record per epoch (see :func:`fit`).
    ``best_epoch``: the epoch with the lowest validation loss (the last epoch
    when there is no validation set). ``stopped_early``: whether ``patience``
    ended training. ``opt_state``: the optimizer state that goes with ``params``.
    ``compile_seconds``: wall time this call spent tracing, lowering and
    compiling programs (or keying and loading them from a cache: JAX's or
    ``jaxbp.executable_cache``);
    ``compiled_programs``: how many it compiled or loaded (0 when an earlier
    fit with the same model and settings compiled them in this process).
    """

    params: Any
    state: Any
    history: list
    best_epoch: int
    stopped_early: bool
    opt_state: Any
    compile_seconds: float = 0.0
    compiled_programs: int = 0


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
    l2: float = 0.0,
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
    should_stop: Callable[[], Any] | None = None,
) -> FitResult:
    """Train ``model`` on ``train = (x, y)`` for ``epochs`` epochs; return a :class:`FitResult`.

    Args:
      train, val: ``(x, y)`` pairs (e.g. ``jaxbp.data.Split``); labels as the
        loss takes them (integer classes or one-hot rows for cross-entropy).
      loss: a loss name (``jaxbp.losses``).
      optimizer: a ``GradientTransformation`` from ``jaxbp.optim`` or optax
        (decoupled weight decay is the optimizer's: ``optim.adamw``).
      backprop: ``"manual"`` (hand-written backward pass) or ``"autodiff"``.
      batch_size: examples per step; ``None`` for full batch; at most ``n``.
        The ``n % batch_size`` examples left over by each epoch's permutation
        are not used that epoch (``jaxbp.train.schedule``).
      l2: λ of the coupled L2 penalty ½λΣ‖W‖² added to the loss (``dW +=
        λW``) on weight matrices/kernels, not biases or normalisation parameters.
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
        the epoch's step losses (each before its update, in training mode,
        penalty included); ``train_accuracy`` and the ``val_*`` are measured
        after the epoch in evaluation mode on the whole set.
      devices: data-parallel training over this many devices (the batch is
        split across them; ``batch_size`` must be divisible by ``devices``).
        In a multi-process job (``jaxbp.train.distributed.initialize`` first,
        in every process, each with the same arguments and data) ``devices``
        counts the devices of the whole job, the same number from each
        process (a multiple of the process count); every process runs the
        same epochs, only process 0 writes checkpoints (all of them read the
        same ``checkpoint_dir`` to resume), training stops when
        ``should_stop()`` is true on any process, and the result holds this
        process's copies of the arrays.
      eval_batch_size: evaluate this many examples at a time.
      should_stop: ``should_stop()`` after each epoch; when true, training
        ends there (with a checkpoint of that epoch when ``checkpoint_dir`` is
        given) and the result so far is returned (e.g. on Ctrl-C: the CLI).

    Raises:
      TrainingDiverged: the training loss became non-finite (names the epoch
        and step; the last good checkpoint is kept).
      ValueError: bad arguments, or a checkpoint that does not match.
      JobFailed: in a multi-process job, another process died.
    """
    check_training_args(loss, optimizer, backprop, epochs, l2, clip_norm, seed)
    check_run_args(val, patience, checkpoint_dir, resume, keep_checkpoints)
    check_int("checkpoint_every", checkpoint_every, 1)
    check_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
    with compile_log() as compiled:  # FitResult.compile_seconds
        batch_sharding, replicated = data_parallel(devices)

        init_key, train_key = seed_keys(seed)
        params, state = model.init_with_state(init_key)
        data, state = _prepare_data(model, params, state, train, val, loss)
        n = data.x.shape[0]
        batch = resolve_batch_size(batch_size, n)
        check_batch_split(batch, devices)

        tx = make_optimizer(optimizer, clip_norm=clip_norm)
        progress = hist.start(init_train_state(tx, params, state), patience)
        config = _config(seed, n, batch, loss, backprop, l2, clip_norm, patience, val)
        program = _epoch_program(
            model, optimizer, config, eval_batch_size, batch_sharding
        )
        restored = None
        if checkpoint_dir is not None:
            progress, train_key, restored = restore(
                checkpoint_dir, resume, progress, train_key, config
            )
        if replicated is not None:
            progress, train_key, data = replicate(progress, train_key, data, replicated)
        record = functools.partial(_record, loss=loss, has_val=val is not None)
        with background_saver(checkpoint_dir, keep_checkpoints) as saver:
            run = Run(program, data, train_key, config, saver, restored, record)
            progress = train_rounds(
                run, progress, (epochs, checkpoint_every), callback, should_stop
            )
    return _result(progress, patience, compiled)


def check_training_args(loss, optimizer, backprop, epochs, l2, clip_norm, seed):
    choose(backprop, bp.BACKPROPS, "backprop")
    losses.get(loss)
    check_optimizer(optimizer)
    check_int("epochs", epochs, 1)
    if not (is_finite_number(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite number >= 0; got {l2!r}")
    check_clip_norm(clip_norm)
    check_seed(seed)


def check_run_args(val, patience, checkpoint_dir, resume, keep_checkpoints):
    check_int("patience", patience, 1, allow_none=True)
    check_int("keep_checkpoints", keep_checkpoints, 1)
    if patience is not None and val is None:
        raise ValueError("patience (early stopping) needs a validation set (val)")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs a checkpoint_dir")


def _prepare_data(model, params, state, train, val, loss):
    """``(RoundData, state)``: the checked training and validation arrays."""
    x, t, state = prepare_pair(model, params, train, "train", loss, state)
    xv = tv = None
    if val is not None:
        xv, tv, _ = prepare_pair(model, params, val, "val", loss, state)
    return RoundData(x, t, xv, tv), state


def _config(seed, n, batch, loss, backprop, l2, clip_norm, patience, val) -> dict:
    """The settings a checkpoint records (a resume must use the same)."""
    return {
        "seed": int(seed),
        "n_train": int(n),
        "batch_size": int(batch),
        "loss": loss,
        "backprop": backprop,
        "l2": float(l2),
        "clip_norm": None if clip_norm is None else float(clip_norm),
        "patience": patience,
        "validation": val is not None,
    }


def _epoch_program(model, optimizer, config, eval_batch_size, batch_sharding):
    """The compiled epoch (made once per process for the same settings)."""
    settings = (
        model,
        config["loss"],
        optimizer,
        config["clip_norm"],
        config["backprop"],
        config["l2"],
        config["n_train"],
        config["batch_size"],
        eval_batch_size,
        batch_sharding,
    )
    return _compiled_epoch(*settings)


@programs_per_process(maxsize=16)
def _compiled_epoch(
    model,
    loss,
    optimizer,
    clip_norm,
    backprop,
    l2,
    n,
    batch,
    eval_batch_size,
    batch_sharding,
):
    """The compiled ``epoch + validation`` of :func:`fit`, cached so that fits
    with the same model, optimizer object and settings compile once per process.

    ``epoch_and_eval(train_state, x, t, train_key, epoch, xv, tv) ->
    (train_state, step_losses, train_loss, finite, (train_accuracy, val_loss,
    val_accuracy))``; ``finite``: the new parameters and state are finite.
    Two programs: the epoch's batches (``schedule.epoch_batches_program``,
    integer work compiled fast), then the steps over them and the evaluation.
    """
    step = make_step(
        model,
        loss=loss,
        optimizer=make_optimizer(optimizer, clip_norm=clip_norm),
        backprop=backprop,
        l2=l2,
        batch_sharding=batch_sharding,
    )
    batches = epoch_batches_program(n, batch)
    full_batch = batch == n

    def train_and_eval(train_state, x, t, indices, keys, xv, tv):
        indices = None if full_batch else indices
        train_state, step_losses = run_steps(step, train_state, x, t, indices, keys)
        finite = hist.all_finite((train_state.params, train_state.state))
        trained = (model, loss, *train_state[:2])
        _, train_accuracy = metrics(*trained, x, t, eval_batch_size)
        if xv is None:
            val_loss = val_accuracy = jnp.nan
        else:
            val_loss, val_accuracy = metrics(*trained, xv, tv, eval_batch_size)
        evaluation = (train_accuracy, val_loss, val_accuracy)
        return train_state, step_losses, jnp.mean(step_losses), finite, evaluation

    train_and_eval = executable_cache.jit(train_and_eval)

    def epoch_and_eval(train_state, x, t, train_key, epoch, xv, tv):
        indices, keys = batches(train_key, epoch)
        return train_and_eval(train_state, x, t, indices, keys, xv, tv)

    return epoch_and_eval


def _record(epoch, train_loss, evaluation, *, loss, has_val) -> dict:
    return hist.make_record(epoch, train_loss, evaluation, has_val, loss)


def _result(progress, patience, compiled) -> FitResult:
    final = progress.best if patience is not None else progress.current
    return FitResult(
        params=final.params,
        state=final.state,
        history=progress.history,
        best_epoch=hist.best_epoch(progress.history),
        stopped_early=progress.stopped_early,
        opt_state=final.opt_state,
        compile_seconds=compiled.seconds,
        compiled_programs=compiled.programs,
    )
