"""Helpers shared by the tests: error measures, hypothesis strategies for random
models, data and targets, child processes, and a small program for the
compilation tests."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from jaxbp import activations, losses
from jaxbp.backprop import prepare
from jaxbp.gradcheck import max_abs_and_relative_error, term_scale, within_rounding

ACTIVATION_NAMES = tuple(activations.ACTIVATIONS)
LOSS_NAMES = tuple(losses.LOSSES)
DTYPES = ("float32", "float64")


def make_targets(
    rng: np.random.Generator, loss: str, batch: int, n_out: int, soft: bool
):
    """Targets of the right kind for ``loss`` and a model with ``n_out`` outputs."""
    if loss == "mse":
        return rng.normal(size=(batch, n_out))
    if loss == "cross_entropy":
        if soft:
            p = rng.random((batch, n_out)) + 0.05
            return p / p.sum(axis=1, keepdims=True)
        return rng.integers(0, n_out, size=batch).astype(np.int32)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=batch).astype(np.float64)
    if n_out == 1:  # hinge, one output
        return rng.integers(0, 2, size=batch).astype(np.int32)
    return rng.integers(0, n_out, size=batch).astype(np.int32)


def outputs_for(loss: str, draw) -> int:
    if loss == "binary_cross_entropy":
        return 1
    if loss == "cross_entropy":
        return draw(st.sampled_from([2, 5]))
    if loss == "hinge":
        return draw(st.sampled_from([1, 3]))
    return draw(st.sampled_from([1, 3]))


@st.composite
def mlp_problems(draw, dtypes=DTYPES, max_depth=3, activation=None, loss=None):
    """A random MLP problem: (sizes, activation, loss, x, y, seed, dtype)."""
    dtype = draw(st.sampled_from(dtypes))
    activation = activation or draw(st.sampled_from(ACTIVATION_NAMES))
    loss = loss or draw(st.sampled_from(LOSS_NAMES))
    # sizes from small sets: every new shape costs a compilation
    depth = draw(st.integers(0, max_depth))
    n_in = draw(st.sampled_from([1, 4]))
    hidden = draw(st.lists(st.sampled_from([1, 3, 8]), min_size=depth, max_size=depth))
    n_out = outputs_for(loss, draw)
    batch = draw(st.sampled_from([1, 5, 8]))
    seed = draw(st.integers(0, 2**31 - 1))
    soft = draw(st.booleans())
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, n_in)).astype(dtype)
    y = make_targets(rng, loss, batch, n_out, soft)
    if y.dtype.kind == "f":
        y = y.astype(dtype)
    return {
        "sizes": [n_in, *hidden, n_out],
        "activation": activation,
        "loss": loss,
        "x": jnp.asarray(x),
        "y": jnp.asarray(y),
        "seed": seed,
        "dtype": dtype,
    }


def distance_to_kinks(model, params, x, y, loss: str) -> float:
    """How far the forward pass is from any kink (ReLU-family z = 0, hinge margin 0).

    Finite differences are wrong within a step of a kink, so FD tests skip
    draws that come too close.
    """
    x, target, _loss_fn, state = prepare(model, params, x, y, loss, None)
    out, caches, _ = model.forward(params, state, x, train=True)
    distances = [np.inf]
    for layer, cache in zip(model.layers, caches):
        if layer.name in activations.KINKED:
            distances.append(float(jnp.min(jnp.abs(cache[0]))))
    if loss == "hinge":
        if out.shape[1] == 1:
            margins = 1 - target * out
        else:
            margins = losses._multiclass_margins(out, target)
            margins = jnp.where(target > 0, jnp.inf, margins)
        distances.append(float(jnp.min(jnp.abs(margins))))
    return min(distances)


# ------------------------------------------------------------------ comparisons


def as_float64(tree):
    """Every floating leaf of ``tree`` in float64 (integers and keys as they are)."""

    def cast(a):
        a = jnp.asarray(a)
        return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


def relative_error(a, b) -> float:
    """max|a − b| / max(max|a|, max|b|) (check_grads' measure, 0 when both are 0)."""
    return max_abs_and_relative_error(a, b)[1]


def assert_trees_rel_close(got, want, rtol, reference=None):
    """``got`` and ``want`` have the same structure and shapes, and every leaf
    of ``got`` is within ``rtol`` of ``want`` relative to the leaf's own scale.

    With ``reference`` (``want`` recomputed in float64), the scale includes
    the leaf's term scale as ``check_grads`` measures it: a leaf that is a
    nearly cancelling sum, or one where ``want`` itself loses digits to
    rounding (e.g. autodiff of log(1 + e^z) − y z in float32 when σ(z) ≈ y,
    where the manual σ(z) − y does not), is judged on the rounding ``want``
    shows against the reference, never on the rest of the tree.
    """
    chex.assert_trees_all_equal_structs(got, want)
    chex.assert_trees_all_equal_shapes(got, want)
    references = (
        jax.tree.leaves(reference)
        if reference is not None
        else [None] * len(jax.tree.leaves(want))
    )
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(got)[0]]
    for path, a, b, r in zip(
        paths, jax.tree.leaves(got), jax.tree.leaves(want), references
    ):
        scale = 0.0 if r is None else term_scale(b, r)
        max_abs, rel = max_abs_and_relative_error(a, b)
        assert within_rounding(a, b, rtol, scale), (
            f"{jax.tree_util.keystr(path)}: relative error {rel:.3e} > {rtol:g} "
            f"and max difference {max_abs:.3e} > {rtol:g} x term scale {scale:.3e}"
        )


RTOL = {"float64": 1e-10, "float32": 1e-5}


def users_xla_flags() -> str:
    """``XLA_FLAGS`` without the suite's fast-compile options: what a user's
    process runs with (unoptimized code is slower and holds more memory)."""
    import os

    from jaxbp.compilation import fast_compile_xla_flags

    fast = set(fast_compile_xla_flags("").split())
    return " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if f not in fast)


def python_child(code: str, *, timeout: float = 600, **env):
    """``code`` run by a fresh ``python -c`` on the CPU, with ``env`` added to
    this process's environment: its CompletedProcess (text output)."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
    )


def affine(x):
    """A small program for the compilation tests (program keys, the executable
    cache), with :data:`AFFINE_X` its input."""
    return jnp.tanh(x) @ x.T + 1.0


AFFINE_X = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
