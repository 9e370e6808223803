"""The one training loop: a ``lax.scan`` of the step over given batches and keys.

:func:`jaxbp.train.fit` (through :func:`make_epoch`), :func:`jaxbp.train.sweep`
and the experiments all train through :func:`run_steps`; they differ only in
which batches they hand it (``jaxbp.train.schedule``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxbp.train.schedule import epoch_batches, resolve_batch_size


def run_steps(step, train_state, x, t, indices, keys):
    """Run ``step`` once per row of ``indices``: ``(train_state, losses (steps,))``.

    Step ``i`` trains on ``x[indices[i]], t[indices[i]]`` (gathered with
    ``jnp.take``) with key ``keys[i]``; ``indices=None`` gives every step all
    of ``x`` and ``t`` in their order (full batch, no gather). ``losses[i]`` is
    step ``i``'s loss before its update. A single full-batch step runs
    without a loop. Traceable: jit it, vmap it.
    """

    def batch(index):
        if index is None:
            return x, t
        return jnp.take(x, index, axis=0), jnp.take(t, index, axis=0)

    if indices is None and keys.shape[0] == 1:
        train_state, value = step(train_state, x, t, keys[0])
        return train_state, value[None]

    def body(carry, batch_and_key):
        index, key = batch_and_key
        return step(carry, *batch(index), key)

    return jax.lax.scan(body, train_state, (indices, keys))


def make_epoch(step, n: int, batch_size: int | None):
    """An epoch: :func:`run_steps` over that epoch's :func:`epoch_batches`.

    ``epoch(train_state, x, t, train_key, epoch) -> (train_state, step_losses)``
    where ``epoch`` is the 1-based epoch number; ``n // batch_size`` steps (the
    remainder of the permutation is left out this epoch). Full batch trains on
    ``x`` itself, without a gather.
    """
    batch_size = resolve_batch_size(batch_size, n)
    full_batch = batch_size == n

    def epoch_fn(train_state, x, t, train_key, epoch):
        indices, keys = epoch_batches(train_key, epoch, n, batch_size)
        return run_steps(step, train_state, x, t, None if full_batch else indices, keys)

    return epoch_fn
