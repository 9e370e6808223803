"""Which examples each step sees, and with which PRNG key: derived from a seed, never stored.

``seed`` gives ``key = jax.random.key(seed)``, split into ``init_key`` (the
parameters) and ``train_key`` (:func:`train_keys`). Epoch ``e`` (1-based) uses
``fold_in(train_key, e)``, split into a permutation key and one key per step
(:func:`epoch_batches`). So any epoch can be recomputed, and a resumed run is
the same as an uninterrupted one.

Each epoch draws a fresh permutation of the ``n`` examples and cuts it into
``n // batch_size`` batches of exactly ``batch_size``; the ``n % batch_size``
examples left over at the end of the permutation are not used in that epoch
(every batch has the same size, so one compiled step serves all). Full batch
(``batch_size`` None or ``n``) is one step per epoch on all examples in their
given order.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.checks import check_int, check_seed, is_int
from jaxbp.compilation import jit_fast


class Schedule(NamedTuple):
    """The batches of a run: ``indices`` ``(steps, batch)`` int into the
    training set and ``keys`` ``(steps,)`` PRNG keys, one per step; with a
    leading run axis (``(runs, steps, batch)``, ``(runs, steps)``) in
    :func:`jaxbp.train.sweep` when each run has its own."""

    indices: jax.Array
    keys: jax.Array


def train_keys(key):
    """``(init_key, train_key)`` from a run's key: parameters, then the epochs."""
    init_key, train_key = jax.random.split(key)
    return init_key, train_key


def seed_keys(seed: int):
    """``train_keys(jax.random.key(seed))``, as one program compiled fast
    (integer work: the same keys; ``jaxbp.compilation.jit_fast``)."""
    check_seed(seed)
    return _seed_keys(np.uint32(seed))


def _keys_of_seed(seed):
    return train_keys(jax.random.key(seed))


_seed_keys = jit_fast(_keys_of_seed)


def resolve_batch_size(batch_size, n: int) -> int:
    """``batch_size`` as an int (None means full batch, ``n``), checked against ``n``."""
    if batch_size is None:
        return n
    if not (is_int(batch_size) and 1 <= batch_size <= n):
        raise ValueError(
            f"batch_size must be None (full batch) or an integer in [1, {n}] "
            f"(at most the training set size {n}); got {batch_size!r}"
        )
    return int(batch_size)


def epoch_batches(train_key, epoch, n: int, batch_size: int | None):
    """``(indices (steps, B), step_keys (steps,))`` of epoch ``epoch`` (1-based).

    ``fold_in(train_key, epoch)`` is split into a permutation key and the
    steps' key, which is split into one key per step. Mini-batches are rows of
    the permutation (its remainder left out); full batch is one row
    ``0, ..., n-1``. Traceable (``epoch`` may be traced).
    """
    batch_size = resolve_batch_size(batch_size, n)
    num_steps = n // batch_size
    epoch_key = jax.random.fold_in(train_key, jnp.asarray(epoch, jnp.uint32))
    perm_key, steps_key = jax.random.split(epoch_key)
    step_keys = jax.random.split(steps_key, num_steps)
    if batch_size == n:
        return jnp.arange(n, dtype=jnp.int32)[None], step_keys
    order = jax.random.permutation(perm_key, jnp.arange(n, dtype=jnp.int32))
    batches = order[: num_steps * batch_size].reshape(num_steps, batch_size)
    return batches, step_keys


def epoch_batches_program(n: int, batch_size: int):
    """:func:`epoch_batches` for ``n`` examples as a compiled program
    ``(train_key, epoch) -> (indices, step_keys)``: integer work (a
    permutation, key splits), compiled fast (``jit_fast``) and cached."""
    return _epoch_batches_program(int(n), resolve_batch_size(batch_size, n))


@functools.lru_cache(maxsize=64)
def _epoch_batches_program(n, batch_size):
    def batches_of_epoch(key, epoch):
        return epoch_batches(key, epoch, n, batch_size)

    return jit_fast(batches_of_epoch)


def batch_schedule(seed_or_train_key, n: int, batch_size: int | None, epochs: int):
    """The :class:`Schedule` of ``fit(seed=s)``: its ``epochs`` epochs of
    :func:`epoch_batches`, concatenated (``epochs * (n // batch_size)`` steps).

    ``seed_or_train_key`` is a seed (an int in [0, 2**32)) or the run's
    ``train_key`` (the second of :func:`train_keys`).
    """
    if is_int(seed_or_train_key):
        check_seed(seed_or_train_key, "seed_or_train_key")
        train_key = train_keys(jax.random.key(seed_or_train_key))[1]
    else:
        train_key = seed_or_train_key
    batch_size = resolve_batch_size(batch_size, n)
    check_int("epochs", epochs, 1)
    return _epochs_schedule(train_key, n, batch_size, int(epochs))


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _epochs_schedule(train_key, n, batch_size, epochs):
    numbers = jnp.arange(1, epochs + 1, dtype=jnp.uint32)
    indices, keys = jax.vmap(lambda e: epoch_batches(train_key, e, n, batch_size))(
        numbers
    )
    return Schedule(indices.reshape(-1, indices.shape[-1]), keys.reshape(-1))
