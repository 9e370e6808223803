"""Shared checks for the sequence layers: a layer's hand-written backward against
jax.vjp of its forward (under jit and vmap) and against finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from helpers import RTOL, as_float64, assert_trees_rel_close
from hypothesis import strategies as st

from jaxbp.gradcheck import finite_difference_grads

DTYPES = ("float32", "float64")


@st.composite
def sequence_problems(draw, dtypes=DTYPES):
    """Sizes of a sequence problem: batch B, length T, features D, hidden H, vocab V."""
    return {
        "batch": draw(st.sampled_from([1, 3])),
        "steps": draw(st.sampled_from([1, 2, 5])),
        "features": draw(st.sampled_from([1, 4])),
        "hidden": draw(st.sampled_from([1, 3])),
        "vocab": draw(st.sampled_from([2, 7])),
        "dtype": draw(st.sampled_from(dtypes)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


def normal(seed: int, shape, dtype):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape).astype(dtype))


def manual_and_vjp(layer, params, x, dy, state=()):
    """(manual (dparams, dx), jax.vjp's (dparams, dx)), both under jit; dx of an
    integer input is left out."""
    differentiable_x = jnp.issubdtype(x.dtype, jnp.floating)

    @jax.jit
    def manual(params, x, dy):
        _, cache, _ = layer.forward(params, state, x)
        dparams, dx = layer.backward(params, cache, dy)
        return (dparams, dx) if differentiable_x else (dparams,)

    @jax.jit
    def reference(params, x, dy):
        if differentiable_x:
            _, vjp = jax.vjp(lambda p, x: layer.forward(p, state, x)[0], params, x)
            return vjp(dy)
        _, vjp = jax.vjp(lambda p: layer.forward(p, state, x)[0], params)
        return vjp(dy)

    return manual(params, x, dy), reference(params, x, dy)


def per_example(fn, params, x, dy):
    """``fn`` vmapped over examples, each a batch of one."""
    return jax.vmap(lambda x, dy: fn(params, x[None], dy[None]))(x, dy)


def assert_backward_equals_vjp(layer, params, x, dy, dtype: str, state=()):
    """Manual backward = jax.vjp under jit, for the batch and vmapped per example."""
    got, want = manual_and_vjp(layer, params, x, dy, state)
    reference = None
    if dtype != "float64":
        reference = manual_and_vjp(layer, *as_float64((params, x, dy)), state)[1]
    assert_trees_rel_close(got, want, RTOL[dtype], reference)
    got_1, want_1 = per_example(
        lambda p, x, dy: manual_and_vjp(layer, p, x, dy, state), params, x, dy
    )
    assert_trees_rel_close(got_1, want_1, RTOL[dtype])
    # the batch's dparams are the per-example dparams summed
    summed = jax.tree.map(lambda g: g.sum(axis=0), got_1[0])
    assert_trees_rel_close(summed, got[0], 100 * RTOL[dtype])
    return got


def assert_close_to_finite_differences(got, fd, rtol=1e-6):
    """Every leaf within ``rtol`` of the tree's largest entry: finite differences
    of an exactly zero gradient (dW_hh when h_0 = 0 and T = 1) are rounding."""
    scale = max(float(jnp.max(jnp.abs(leaf))) for leaf in jax.tree.leaves(fd))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(fd)):
        assert float(jnp.max(jnp.abs(a - b))) <= rtol * max(scale, 1.0)


def assert_backward_equals_finite_differences(layer, params, x, dy, state=()):
    """float64: manual dparams (and dx) = centred finite differences of Σ y ⊙ dy."""
    _, cache, _ = layer.forward(params, state, x)
    dparams, dx = layer.backward(params, cache, dy)

    def value(p, x):
        return jnp.sum(layer.forward(p, state, x)[0] * dy)

    fd = finite_difference_grads(lambda p: value(p, x), params)
    assert_close_to_finite_differences(dparams, fd)
    if jnp.issubdtype(x.dtype, jnp.floating):
        fd_x = finite_difference_grads(lambda x: value(params, x), x)
        assert_close_to_finite_differences(dx, fd_x)
