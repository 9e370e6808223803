"""fit_language_model: train a next-token model on a stream of tokens, step by step.

A language model sees random windows of the token stream rather than epochs
over examples (as nanoGPT does)::

    x = tokens[s : s + T]            (one window per row, B rows, random s)
    y = tokens[s + 1 : s + T + 1]    (the next token at every position)
    L = cross-entropy over all B·T positions

Training runs ``steps`` optimizer steps in rounds of ``eval_interval`` steps
(a ``lax.scan`` of the one train step, :func:`jaxbp.train.run_steps`); after
each round the validation loss is measured in evaluation mode on the same
``eval_batches`` batches of validation windows every time (so the numbers
are comparable between rounds). Checkpoints, resume, early stopping,
``should_stop`` and data parallelism are :func:`jaxbp.train.fit`'s
(``jaxbp.train.rounds``). Randomness comes from the seed: round ``r`` uses
``fold_in(train_key, r)`` for its windows and dropout keys, the validation
windows ``fold_in(train_key, 0)``.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxbp import executable_cache, losses
from jaxbp.checks import check_int
from jaxbp.compilation import programs_per_process
from jaxbp.model import Model
from jaxbp.train import history as hist
from jaxbp.train.fit import check_run_args, check_training_args
from jaxbp.train.loop import run_steps
from jaxbp.train.parallel import check_batch_split, data_parallel
from jaxbp.train.resume import background_saver, restore
from jaxbp.train.rounds import RoundData, Run, replicate, train_rounds
from jaxbp.train.schedule import seed_keys
from jaxbp.train.step import init_train_state, make_optimizer, make_step


class LanguageModelResult(NamedTuple):
    """What :func:`fit_language_model` returns.

    ``params``/``state``: the final model (the best round's with
    ``patience``); ``history``: one record ``{"step", "train_loss",
    "val_loss"}`` per evaluation; ``best_step``: the step of the lowest
    validation loss; ``stopped_early``: ``patience`` ended training;
    ``opt_state``: the optimizer state that goes with ``params``.
    """

    params: Any
    state: Any
    history: list
    best_step: int
    stopped_early: bool
    opt_state: Any


def window_batches(train_key, round_number, n_tokens: int, shape):
    """``(starts (steps, B), step_keys (steps,))`` of round ``round_number``.

    ``shape = (steps, batch_size, block_size)``; each start ``s`` is uniform
    in ``[0, n_tokens − block_size)``, so the window ``s … s+T−1`` and its
    targets ``s+1 … s+T`` lie inside the stream. Traceable.
    """
    steps, batch_size, block_size = shape
    round_key = jax.random.fold_in(train_key, jnp.asarray(round_number, jnp.uint32))
    window_key, steps_key = jax.random.split(round_key)
    starts = jax.random.randint(
        window_key, (steps, batch_size), 0, n_tokens - block_size
    )
    return starts, jax.random.split(steps_key, steps)


def windows(tokens, starts, block_size: int):
    """``(x, y)``: the windows of ``tokens`` at ``starts`` (any shape ``S``),
    ``x`` of shape ``S + (T,)`` and its next tokens ``y``."""
    offsets = starts[..., None] + jnp.arange(block_size)
    return jnp.take(tokens, offsets, axis=0), jnp.take(tokens, offsets + 1, axis=0)


def next_token_targets(model: Model, y):
    """One-hot rows (…, V) of next tokens ``y``: what the step's loss takes."""
    return jax.nn.one_hot(y, model.out_shape[-1], dtype=model.dtype)


def validation_loss(model, loss: str, params, state, tokens, starts, block_size):
    """The mean loss over the validation batches ``starts (batches, B)``,
    one batch at a time (``lax.map``), in evaluation mode."""
    loss_fn = losses.get(loss)

    def batch_loss(batch_starts):
        x, y = windows(tokens, batch_starts, block_size)
        out = model.apply(params, x, state=state, train=False)
        return loss_fn.value(out, next_token_targets(model, y))

    return jnp.mean(jax.lax.map(batch_loss, starts))


def fit_language_model(
    model: Model,
    train_tokens,
    val_tokens,
    *,
    optimizer,
    steps: int,
    batch_size: int = 32,
    block_size: int = 64,
    eval_interval: int = 200,
    eval_batches: int = 20,
    loss: str = "cross_entropy",
    backprop: str = "manual",
    l2: float = 0.0,
    clip_norm: float | None = None,
    patience: int | None = None,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    callback: Callable[[dict], Any] | None = None,
    devices: int = 1,
    keep_checkpoints: int = 2,
    should_stop: Callable[[], Any] | None = None,
    vocab: str | None = None,
) -> LanguageModelResult:
    """Train a next-token ``model`` for ``steps`` steps; a :class:`LanguageModelResult`.

    Args:
      model: takes tokens (B, ``block_size``) and gives logits (B, T, V)
        (e.g. ``jaxbp.recipes.language_model``).
      train_tokens, val_tokens: 1-D integer token streams, each longer than
        ``block_size`` (``jaxbp.data.text.text_corpus`` gives both).
      steps: optimizer steps; an evaluation follows every ``eval_interval``
        steps and the last one (the last round may be shorter).
      batch_size, block_size: windows per step and tokens per window.
      eval_batches: validation batches (of ``batch_size`` windows) per evaluation.
      patience: stop after ``patience`` evaluations without a lower
        validation loss and return the best round's parameters.
      vocab: recorded in the checkpoints (so a sampler can decode, and a
        resume on another text is refused).
      The other arguments are :func:`jaxbp.train.fit`'s (``devices`` in a
      multi-process job too); a checkpoint is written after every round, and
      ``callback(record)`` and ``should_stop()`` are called after every round.

    Raises:
      TrainingDiverged: the training loss became non-finite (its ``step``
        counts from the start of training; ``epoch`` is the round).
      ValueError: bad arguments, or a checkpoint that does not match.
      JobFailed: in a multi-process job, another process died.
    """
    check_int("steps", steps, 1)
    check_training_args(loss, optimizer, backprop, 1, l2, clip_norm, seed)
    check_run_args(val_tokens, patience, checkpoint_dir, resume, keep_checkpoints)
    for name, value in (
        ("batch_size", batch_size),
        ("block_size", block_size),
        ("eval_interval", eval_interval),
        ("eval_batches", eval_batches),
    ):
        check_int(name, value, 1)
    train_tokens = _token_stream("train_tokens", train_tokens, block_size)
    val_tokens = _token_stream("val_tokens", val_tokens, block_size)
    check_batch_split(batch_size, devices)
    batch_sharding, replicated = data_parallel(devices)

    init_key, train_key = seed_keys(seed)
    params, state = model.init_with_state(init_key)
    model.check_input(train_tokens[:block_size][None])
    tx = make_optimizer(optimizer, clip_norm=clip_norm)
    progress = hist.start(init_train_state(tx, params, state), patience)
    config = {
        "seed": int(seed),
        "n_train": int(train_tokens.shape[0]),
        "n_val": int(val_tokens.shape[0]),
        "vocab": vocab,
        "batch_size": int(batch_size),
        "block_size": int(block_size),
        "eval_interval": int(eval_interval),
        "eval_batches": int(eval_batches),
        "loss": loss,
        "backprop": backprop,
        "l2": float(l2),
        "clip_norm": None if clip_norm is None else float(clip_norm),
        "patience": patience,
    }
    lengths = _round_lengths(steps, eval_interval)
    program = _round_program(model, optimizer, config, lengths, batch_sharding)
    restored = None
    if checkpoint_dir is not None:
        progress, train_key, restored = restore(
            checkpoint_dir, resume, progress, train_key, config
        )
    val_starts, _ = window_batches(
        train_key, 0, val_tokens.shape[0], (eval_batches, batch_size, block_size)
    )
    data = RoundData(train_tokens, None, val_tokens, val_starts)
    if replicated is not None:
        progress, train_key, data = replicate(progress, train_key, data, replicated)
    record = functools.partial(_record, eval_interval=eval_interval, steps=steps)
    diverged = functools.partial(_diverged, eval_interval=eval_interval)
    with background_saver(checkpoint_dir, keep_checkpoints) as saver:
        run = Run(program, data, train_key, config, saver, restored, record, diverged)
        progress = train_rounds(run, progress, (lengths[0], 1), callback, should_stop)
    return _result(progress, patience, eval_interval, steps)


def _token_stream(name: str, tokens, block_size: int):
    """``tokens`` as a 1-D integer array holding at least one window."""
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 1 or not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise ValueError(
            f"{name} must be a 1-D array of integer tokens; got shape "
            f"{tokens.shape} and dtype {tokens.dtype}"
        )
    if tokens.shape[0] < block_size + 1:
        raise ValueError(
            f"{name} holds {tokens.shape[0]} tokens, fewer than one window of "
            f"block_size + 1 = {block_size + 1}"
        )
    return tokens


def _round_lengths(steps: int, eval_interval: int) -> tuple[int, int, int]:
    """``(rounds, steps of a full round, steps of the last round)``."""
    rounds = math.ceil(steps / eval_interval)
    return rounds, min(eval_interval, steps), steps - (rounds - 1) * eval_interval


def _round_program(model, optimizer, config, lengths, batch_sharding):
    """``program(train_state, tokens, _, train_key, round, val_tokens,
    val_starts)``: one round's steps then the validation loss, compiled once
    per round length (the last round may be shorter)."""
    rounds, full, last = lengths
    settings = (
        model,
        optimizer,
        config["loss"],
        config["clip_norm"],
        config["backprop"],
        config["l2"],
        config["batch_size"],
        config["block_size"],
        batch_sharding,
    )

    def program(train_state, tokens, _, train_key, number, val_tokens, val_starts):
        steps = last if int(number) == rounds else full
        compiled = _compiled_round(*settings, steps)
        return compiled(train_state, tokens, train_key, number, val_tokens, val_starts)

    return program


@programs_per_process(maxsize=16)
def _compiled_round(
    model,
    optimizer,
    loss,
    clip_norm,
    backprop,
    l2,
    batch_size,
    block_size,
    batch_sharding,
    steps,
):
    """The jitted round of ``steps`` steps and the validation loss (cached)."""
    step = make_step(
        model,
        loss=loss,
        optimizer=make_optimizer(optimizer, clip_norm=clip_norm),
        backprop=backprop,
        l2=l2,
        batch_sharding=batch_sharding,
    )

    def token_step(train_state, x, y, key):
        return step(train_state, x, next_token_targets(model, y), key)

    def round_and_eval(train_state, tokens, train_key, number, val_tokens, val_starts):
        starts, keys = window_batches(
            train_key, number, tokens.shape[0], (steps, batch_size, block_size)
        )
        offsets = starts[..., None] + jnp.arange(block_size)
        train_state, step_losses = run_steps(
            token_step, train_state, tokens[:-1], tokens[1:], offsets, keys
        )
        finite = hist.all_finite((train_state.params, train_state.state))
        val_loss = validation_loss(
            model, loss, *train_state[:2], val_tokens, val_starts, block_size
        )
        evaluation = (jnp.nan, val_loss, jnp.nan)
        return train_state, step_losses, jnp.mean(step_losses), finite, evaluation

    return executable_cache.jit(round_and_eval)


def _record(number, train_loss, evaluation, *, eval_interval, steps) -> dict:
    """A round's record: the step reached, the mean step loss, the validation loss."""
    return {
        "step": min(number * eval_interval, steps),
        "train_loss": hist.as_float(train_loss),
        "val_loss": hist.as_float(evaluation[1]),
    }


def _diverged(number, step_losses, history, checkpoint, *, eval_interval):
    """TrainingDiverged naming the step, counted from the start of training."""
    step, value = hist.first_bad_step(step_losses)
    step += (number - 1) * eval_interval
    raise hist.TrainingDiverged(
        f"training diverged: non-finite training loss or parameters ({value}) at "
        f"step {step}; try a smaller learning rate or clip_norm"
        f"{hist.kept_checkpoint(checkpoint)}",
        epoch=number,
        step=step,
        loss=value,
        history=list(history),
        checkpoint=checkpoint,
    )


def _result(progress, patience, eval_interval, steps) -> LanguageModelResult:
    final = progress.best if patience is not None else progress.current
    best_round = progress.best_epoch or progress.epoch
    return LanguageModelResult(
        params=final.params,
        state=final.state,
        history=progress.history,
        best_step=min(best_round * eval_interval, steps),
        stopped_early=progress.stopped_early,
        opt_state=final.opt_state,
    )
