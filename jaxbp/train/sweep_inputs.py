"""The per-run inputs of ``sweep``, checked, with the run axis each one has.

A sweep trains N runs. Each input is either *per run* (a leading axis of size
N, vmapped over) or *shared* by every run (no run axis, broadcast):

- ``params``: always per run (N is its leading axis size);
- ``state``: shared (the model's initial state) or per run;
- ``hyperparams``: per run (when given);
- ``l2``: a Python number (shared, part of the program), a 0-d array
  (shared) or an ``(N,)`` array (per run);
- the schedule's ``indices``: ``(S, B)`` shared or ``(N, S, B)`` per run, and
  its ``keys``: ``(S,)`` shared or ``(N, S)`` per run.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.checks import check_seed, concrete_values, is_int, is_number
from jaxbp.train.schedule import Schedule, batch_schedule, train_keys
from jaxbp.train.step import check_l2, check_optimizer, is_gradient_transformation


class RunInputs(NamedTuple):
    """What each run of a sweep starts from; as ``in_axes``, each field's run
    axis (0) or None (shared)."""

    params: Any
    state: Any
    hyperparams: Any
    l2: Any
    indices: Any
    keys: Any


def _shapes(tree):
    return [tuple(np.shape(leaf)) for leaf in jax.tree.leaves(tree)]


def run_count(model, params) -> int:
    """N, the leading axis of ``params`` (the model's parameters, stacked)."""
    template = jax.eval_shape(model.init, jax.random.key(0))
    want = "the model's parameters stacked on a leading run axis (init_params)"
    if jax.tree.structure(params) != jax.tree.structure(template):
        raise ValueError(f"params must be {want}; its tree structure differs")
    shapes = _shapes(params)
    if not shapes or any(len(s) == 0 for s in shapes):
        raise ValueError(f"params must be {want}; got shapes {shapes}")
    runs = shapes[0][0]
    for got, one in zip(shapes, _shapes(template)):
        if got != (runs, *one):
            raise ValueError(
                f"params must be {want}: a leaf of shape {got}, expected "
                f"{(runs, *one)} (N={runs} runs from the first leaf)"
            )
    return runs


def state_axis(model, state, runs):
    """``(state, axis)``: None gives the model's initial state, shared."""
    template = model.init_state()
    if state is None:
        return template, None
    if jax.tree.structure(state) != jax.tree.structure(template):
        raise ValueError("state must have the structure of model.init_state()")
    got, one = _shapes(state), _shapes(template)
    if got == one:
        return state, None
    if got == [(runs, *s) for s in one]:
        return state, 0
    raise ValueError(
        f"state must be the model's state (shapes {one}) or one per run "
        f"(a leading axis of {runs}, as params); got shapes {got}"
    )


def hyperparams_axis(model, optimizer, hyperparams, runs):
    """``(hyperparams, axis)``; floating leaves cast to the model's dtype."""
    if hyperparams is None:
        check_optimizer(optimizer)
        return None, None
    if is_gradient_transformation(optimizer) or not callable(optimizer):
        raise ValueError(
            "with hyperparams, optimizer must be a function optimizer(h) -> "
            f"GradientTransformation (e.g. optim.sgd); got {type(optimizer).__name__}"
        )

    def per_run(leaf):
        if not hasattr(leaf, "shape") or np.ndim(leaf) == 0 or len(leaf) != runs:
            raise ValueError(
                f"hyperparams must be arrays with a leading run axis of {runs} "
                f"(as params); got a leaf {leaf!r}"
            )
        leaf = jnp.asarray(leaf)
        floating = jnp.issubdtype(leaf.dtype, jnp.floating)
        return leaf.astype(model.dtype) if floating else leaf

    return jax.tree.map(per_run, hyperparams), 0


def l2_axis(l2, runs):
    """``(static l2, l2 array, axis)``: a number stays in the program; an
    array is an input, shared (0-d) or per run (``(N,)``)."""
    check_l2(l2)
    if l2 is None or is_number(l2):
        return l2, None, None
    array = jnp.asarray(l2)
    values = concrete_values(array)
    if values is not None and not (np.all(np.isfinite(values)) and np.all(values >= 0)):
        raise ValueError(f"l2 must be finite and >= 0; got {values}")
    if array.ndim == 0:
        return None, array, None
    if array.shape != (runs,):
        raise ValueError(
            f"l2 must be a number or an array of shape () or ({runs},) (one per "
            f"run, as params); got shape {array.shape}"
        )
    return None, array, 0


def _is_key_array(keys) -> bool:
    dtype = getattr(keys, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def check_schedule(schedule, runs, n: int):
    """``(Schedule, (indices axis, keys axis))`` of a given schedule."""
    try:
        indices, keys = schedule
    except (TypeError, ValueError):
        raise ValueError("schedule must be a Schedule(indices, keys)") from None
    indices = jnp.asarray(indices)
    if not jnp.issubdtype(indices.dtype, jnp.integer) or indices.ndim not in (2, 3):
        raise ValueError(
            "schedule.indices must be integers of shape (steps, batch) or "
            f"({runs}, steps, batch); got {indices.dtype} {indices.shape}"
        )
    if not _is_key_array(keys) or keys.ndim not in (1, 2):
        raise ValueError(
            "schedule.keys must be PRNG keys (jax.random.key) of shape (steps,) "
            f"or ({runs}, steps); got {getattr(keys, 'dtype', type(keys).__name__)}"
        )
    axes = (0 if indices.ndim == 3 else None, 0 if keys.ndim == 2 else None)
    for name, array, axis in (("indices", indices, axes[0]), ("keys", keys, axes[1])):
        if axis == 0 and array.shape[0] != runs:
            raise ValueError(
                f"schedule.{name} has {array.shape[0]} runs; params has {runs}"
            )
    steps = indices.shape[-2], keys.shape[-1]
    if steps[0] != steps[1]:
        raise ValueError(f"schedule has {steps[0]} steps of indices, {steps[1]} keys")
    values = concrete_values(indices)
    if values is not None and values.size and not 0 <= values.min() <= values.max() < n:
        raise ValueError(
            f"schedule.indices must be in [0, {n}) (the training set); got values "
            f"in [{values.min()}, {values.max()}]"
        )
    return Schedule(indices, keys), axes


def seeds_schedule(seeds, runs, n: int, batch_size, epochs):
    """``(Schedule, axes)``: each seed's :func:`batch_schedule` (fit(seed=s)'s)."""
    if is_int(seeds):
        check_seed(seeds, "seeds")
        return batch_schedule(int(seeds), n, batch_size, epochs), (None, None)
    try:
        seeds = list(seeds)
    except TypeError:
        raise ValueError(f"seeds must be an int or a sequence; got {seeds!r}") from None
    if len(seeds) != runs:
        raise ValueError(f"seeds has {len(seeds)} runs; params has {runs}")
    for seed in seeds:
        check_seed(seed, "seeds")
    keys = jnp.stack([train_keys(jax.random.key(int(s)))[1] for s in seeds])
    one = jax.vmap(lambda key: batch_schedule(key, n, batch_size, epochs))
    return one(keys), (0, 0)


def schedule_axes(schedule, seeds, runs, n, batch_size, epochs):
    """The sweep's schedule: given, or from ``seeds``; never both."""
    if schedule is not None and seeds is not None:
        raise ValueError("give seeds or schedule, not both")
    if schedule is not None:
        return check_schedule(schedule, runs, n)
    if seeds is None:
        raise ValueError(
            "sweep needs seeds (each run trains on fit(seed=s)'s batches) or a schedule"
        )
    return seeds_schedule(seeds, runs, n, batch_size, epochs)
