"""Finite differences of a scalar function of a pytree, on every coordinate or
on a sample of them (CS231n's sparse gradient check).

The stencil is the fourth-order centred one,
``(−f(θ+2h) + 8 f(θ+h) − 8 f(θ−h) + f(θ−2h)) / 12h`` with h = ``FD_EPS``: its
truncation error is O(h⁴), so rounding, about 1.5 ε|f|/h, bounds it. The
coordinates of a model's loss are evaluated ``FD_CHUNK`` at a time by one
compiled, batched program: the chunk bounds the memory whatever the model, and
one compilation serves every chunk of every leaf.

A sample of K coordinates of a leaf of n catches a rule that is wrong in a
single coordinate with probability K/n only.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

FD_EPS = 1e-6
FD_CHUNK = 32  # coordinates evaluated together: bounds the memory


def finite_differences_at(f, flat, indices, *, eps: float = FD_EPS, batch_size=None):
    """Fourth-order centred finite differences of ``f`` (a function of the flat
    vector ``flat``) along the coordinates ``indices``, batched by ``lax.map``."""

    def coordinate(i):
        e = jnp.zeros_like(flat).at[i].set(eps)
        return (
            -f(flat + 2 * e) + 8 * f(flat + e) - 8 * f(flat - e) + f(flat - 2 * e)
        ) / (12 * eps)

    return jax.lax.map(coordinate, indices, batch_size=batch_size)


def finite_difference_grads(value_fn, params, *, eps: float = FD_EPS):
    """Fourth-order centred finite differences of ``value_fn`` at ``params``,
    every coordinate, batched through ``lax.map``; same tree as ``params``."""
    flat, unravel = ravel_pytree(params)
    n = flat.size
    if n == 0:
        return params
    batch = max(1, min(n, (1 << 22) // max(n, 1)))
    fd = finite_differences_at(
        lambda v: value_fn(unravel(v)), flat, jnp.arange(n), eps=eps, batch_size=batch
    )
    return unravel(fd)


def sample_coordinates(params, fd_samples: int | None, fd_seed: int = 0):
    """Per leaf of ``params``, the flat indices (within the leaf) that finite
    differences check: all of them when ``fd_samples`` is None or the leaf has
    at most ``fd_samples``, else a sorted sample of ``fd_samples`` without
    replacement from ``numpy.random.default_rng((fd_seed, leaf index))``."""
    coordinates = []
    for i, leaf in enumerate(jax.tree.leaves(params)):
        size = int(np.size(leaf))
        if fd_samples is None or size <= fd_samples:
            coordinates.append(np.arange(size))
        else:
            rng = np.random.default_rng((fd_seed, i))
            coordinates.append(np.sort(rng.choice(size, fd_samples, replace=False)))
    return coordinates


@functools.partial(jax.jit, static_argnames=("model", "loss_fn", "train", "eps"))
def _loss_chunk(model, loss_fn, params, state, x, target, indices, *, key, train, eps):
    """Finite differences of the loss along the flat coordinates ``indices``."""
    flat, unravel = ravel_pytree(params)

    def f(v):
        out, _, _ = model.forward(unravel(v), state, x, key=key, train=train)
        return loss_fn.value(out, target)

    return finite_differences_at(f, flat, indices, eps=eps, batch_size=len(indices))


def loss_finite_differences(
    model, loss_fn, data, coordinates, *, eps=FD_EPS, progress=None, key, train
):
    """Per leaf of ``data[0]`` (the params of ``data = (params, state, x,
    target)``), the finite differences of the loss at the flat ``coordinates``
    of that leaf (1-D arrays), in the dtype of ``data``, ``FD_CHUNK`` at a time;
    ``progress(done, total, leaf_index, n)`` is called after each leaf."""
    sizes = [int(np.size(leaf)) for leaf in jax.tree.leaves(data[0])]
    offsets = np.cumsum([0, *sizes[:-1]]).astype(int)
    chunk = min(FD_CHUNK, max((len(c) for c in coordinates), default=1))
    run = {"key": key, "train": train, "eps": eps}
    results = []
    for i, (offset, leaf) in enumerate(zip(offsets, coordinates)):
        values = [np.zeros(0)]
        for start in range(0, len(leaf), chunk):
            part = offset + leaf[start : start + chunk]
            padded = jnp.asarray(np.pad(part, (0, chunk - len(part)), "edge"))
            fd = _loss_chunk(model, loss_fn, *data, padded, **run)
            values.append(np.asarray(fd)[: len(part)])
        results.append(np.concatenate(values))
        if progress is not None:
            progress(i + 1, len(coordinates), i, len(leaf))
    return results
