"""sweep: N models trained in one jitted, vmapped program (seeds, learning rates, L2, ...).

::

    seeds = [0, 1, 2]
    params, state = init_params(model, seeds)
    runs = sweep(model, train, val, optimizer=optim.adam(1e-3), params=params,
                 state=state, seeds=seeds, batch_size=32, epochs=20)
    runs.val_accuracy            # (3, 20): each seed's fit(seed=s) history

    lrs = jnp.array([0.01, 0.1, 1.0])
    params, state = init_params(model, [0, 0, 0])
    runs = sweep(model, train, val, optimizer=optim.sgd, hyperparams=lrs,
                 params=params, state=state, seeds=0, epochs=20)

The program is ``jit(vmap(run))``; a run is a ``lax.scan`` over evaluation
chunks, each :func:`jaxbp.train.run_steps` over ``eval_every`` steps of the
run's schedule, then the validation metrics and the probe. Over seeds, a sweep
computes what ``fit(seed=s)`` computes (same initial parameters, batches and
step keys), but XLA compiles the batched program differently (batched
matmuls, other fusions), so the numbers agree to float rounding, not always
bit for bit. Nothing raises inside the program: a diverging run shows NaN or
inf losses. The whole schedule is an input: ``N * steps * batch`` int32
indices when every run has its own.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import backprop as bp
from jaxbp import losses
from jaxbp.checks import check_int, check_seed, choose
from jaxbp.train import sweep_inputs as inputs
from jaxbp.train.evaluate import metrics
from jaxbp.train.loop import run_steps
from jaxbp.train.pairs import prepare_pair
from jaxbp.train.schedule import train_keys
from jaxbp.train.step import TrainState, check_clip_norm, make_optimizer, make_step


class Evaluation(NamedTuple):
    """Measurements of a sweep at one point, in evaluation mode: validation
    loss and accuracy (NaN without ``val``; accuracy NaN for mse) and the
    probe's outputs (None without a probe)."""

    val_loss: jax.Array
    val_accuracy: jax.Array
    probes: Any


class SweepResult(NamedTuple):
    """What :func:`sweep` returns; every array has the run axis N first.

    ``params``, ``state``, ``opt_state``: after the last step.
    ``train_loss`` ``(N, S)``: every step's loss before its update.
    ``eval_steps`` ``(E,)``: the steps after which the runs were evaluated
    (``eval_every``, ``2 * eval_every``, ..., ``S``); ``val_loss``,
    ``val_accuracy`` ``(N, E)`` and ``probes`` ``(N, E, ...)`` there;
    ``initial``: an :class:`Evaluation` of the initial parameters (step 0).
    """

    params: Any
    state: Any
    opt_state: Any
    train_loss: jax.Array
    eval_steps: np.ndarray
    val_loss: jax.Array
    val_accuracy: jax.Array
    probes: Any
    initial: Evaluation


class _Static(NamedTuple):
    """The settings every run shares, fixed in the compiled program."""

    model: Any
    loss: str
    optimizer: Any
    tuned: bool  # optimizer(h) with per-run hyperparams
    clip_norm: Any
    backprop: str
    l2: Any  # a Python number, or None when l2 is an input
    eval_every: int
    probe: Any
    eval_batch_size: Any


def init_params(model, seeds):
    """``(params, state)``: each seed's initial parameters stacked on a leading
    axis, drawn with the init key of ``fit(seed=s)`` (bit for bit its start),
    and the model state (the same for every seed, no run axis)."""
    try:
        seeds = list(seeds)
    except TypeError:
        raise ValueError(f"seeds must be a sequence of ints; got {seeds!r}") from None
    if not seeds:
        raise ValueError("seeds must hold at least one seed; got none")
    for seed in seeds:
        check_seed(seed, "seeds")
    runs = [model.init_with_state(train_keys(jax.random.key(s))[0]) for s in seeds]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[p for p, _ in runs])
    return params, runs[0][1]


def sweep(
    model,
    train,
    val=None,
    *,
    loss: str = "cross_entropy",
    optimizer,
    params,
    state=None,
    hyperparams=None,
    schedule=None,
    seeds=None,
    batch_size: int | None = 32,
    epochs: int = 1,
    backprop: str = "manual",
    l2=0.0,
    clip_norm=None,
    eval_every: int | None = None,
    probe=None,
    eval_batch_size: int | None = None,
) -> SweepResult:
    """Train N runs of ``model`` in one compiled program; a :class:`SweepResult`.

    Args:
      train, val: ``(x, y)`` pairs shared by every run (``val`` optional).
      loss, backprop, clip_norm, eval_batch_size: as in :func:`jaxbp.train.fit`.
      optimizer: a GradientTransformation shared by every run, or with
        ``hyperparams`` a function ``optimizer(h)`` returning one
        (``optim.sgd``, ``lambda h: optim.adam(h["lr"], b1=h["b1"])``...).
      params: the runs' initial parameters, stacked: leading axis N
        (:func:`init_params`).
      state: the model state, shared (default: the model's initial state) or
        stacked per run.
      hyperparams: a pytree of arrays with leading axis N; run ``i`` uses
        ``optimizer(h_i)``. Floating leaves are cast to the model's dtype.
      schedule: a :class:`jaxbp.train.Schedule` (indices ``(S, B)`` or
        ``(N, S, B)``, keys ``(S,)`` or ``(N, S)``), or None for ``seeds``'.
      seeds: without ``schedule``: an int (one schedule shared by every run)
        or N ints; run ``i`` trains on :func:`jaxbp.train.batch_schedule`
        ``(seeds[i], n, batch_size, epochs)``: the batches and step keys of
        ``fit(seed=seeds[i])``.
      batch_size, epochs: of the seeds' schedules (unused with ``schedule``).
      l2: the coupled L2 penalty λ (as in fit): a number, or an ``(N,)``
        array (one per run).
      eval_every: evaluate (and probe) after every ``eval_every`` steps; it
        must divide the number of steps. Default: one epoch's steps
        (``n // B``).
      probe: ``probe(model, params, state) -> pytree`` of arrays, recorded at
        step 0 and at every evaluation (traced inside the program).

    Raises:
      ValueError: bad arguments, naming them (run counts that disagree,
        indices outside the training set, ``eval_every`` not dividing the
        steps, ...).
    """
    choose(backprop, bp.BACKPROPS, "backprop")
    losses.get(loss)
    check_clip_norm(clip_norm)
    check_int("eval_batch_size", eval_batch_size, 1, allow_none=True)
    if probe is not None and not callable(probe):
        raise ValueError(f"probe must be a function or None; got {probe!r}")
    x, t, _ = prepare_pair(model, None, train, "train", loss, model.init_state())
    xv = tv = None
    if val is not None:
        xv, tv, _ = prepare_pair(model, None, val, "val", loss, model.init_state())
    n = x.shape[0]
    runs = inputs.run_count(model, params)
    state, state_axis = inputs.state_axis(model, state, runs)
    hyper, hyper_axis = inputs.hyperparams_axis(model, optimizer, hyperparams, runs)
    l2_static, l2_array, l2_axis = inputs.l2_axis(l2, runs)
    plan, plan_axes = inputs.schedule_axes(schedule, seeds, runs, n, batch_size, epochs)
    every = _eval_every(eval_every, plan.indices.shape[-2], n, plan.indices.shape[-1])
    static = _Static(
        model=model,
        loss=loss,
        optimizer=optimizer,
        tuned=hyperparams is not None,
        clip_norm=clip_norm,
        backprop=backprop,
        l2=l2_static,
        eval_every=every,
        probe=probe,
        eval_batch_size=eval_batch_size,
    )
    run_inputs = inputs.RunInputs(params, state, hyper, l2_array, *plan)
    axes = inputs.RunInputs(0, state_axis, hyper_axis, l2_axis, *plan_axes)
    program = jax.jit(
        jax.vmap(
            functools.partial(_run, static), in_axes=(axes, None, None, None, None)
        )
    )
    final, train_loss, evaluations, initial = program(run_inputs, x, t, xv, tv)
    steps = plan.indices.shape[-2]
    return SweepResult(
        *final, train_loss, np.arange(every, steps + 1, every), *evaluations, initial
    )


def _eval_every(eval_every, steps: int, n: int, batch: int) -> int:
    """``eval_every``, default one epoch's steps; it must divide ``steps``."""
    check_int("eval_every", eval_every, 1, allow_none=True)
    given = eval_every is not None
    if not given:
        eval_every = n // batch if 1 <= n // batch <= steps else steps
    if steps % eval_every:
        default = "" if given else " (the default, one epoch's steps)"
        raise ValueError(
            f"eval_every must divide the number of steps {steps}; got "
            f"{eval_every}{default}"
        )
    return eval_every


def _measure(static: _Static, train_state, xv, tv) -> Evaluation:
    """Validation metrics and probe outputs of one run's train state."""
    model, params, state = static.model, train_state.params, train_state.state
    if xv is None:
        val_loss = val_accuracy = jnp.full((), jnp.nan, model.dtype)
    else:
        val_loss, val_accuracy = metrics(
            model, static.loss, params, state, xv, tv, static.eval_batch_size
        )
    probes = None if static.probe is None else static.probe(model, params, state)
    return Evaluation(val_loss, val_accuracy, probes)


def _run(static: _Static, run: inputs.RunInputs, x, t, xv, tv):
    """One run (vmapped): ``(final train state, step losses, evaluations,
    initial evaluation)``."""
    optimizer = static.optimizer(run.hyperparams) if static.tuned else static.optimizer
    tx = make_optimizer(optimizer, clip_norm=static.clip_norm)
    step = make_step(
        static.model,
        loss=static.loss,
        optimizer=tx,
        backprop=static.backprop,
        l2=static.l2 if run.l2 is None else run.l2,
    )
    start = TrainState(run.params, run.state, tx.init(run.params))
    every = static.eval_every
    chunks = (
        run.indices.reshape(-1, every, run.indices.shape[-1]),
        run.keys.reshape(-1, every),
    )

    def chunk(train_state, batches):
        train_state, step_losses = run_steps(step, train_state, x, t, *batches)
        return train_state, (step_losses, _measure(static, train_state, xv, tv))

    final, (step_losses, evaluations) = jax.lax.scan(chunk, start, chunks)
    initial = _measure(static, start, xv, tv)
    return final, step_losses.reshape(-1), evaluations, initial
