"""Causal self-attention and the position embedding: the hand-written backward
against jax.vjp (jit, vmap, float32/float64) and finite differences over drawn
(batch, length, heads, head width); the textbook form equal to the fast one;
causality (nothing from a later position reaches an earlier one, either way)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RTOL, as_float64, assert_trees_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st
from seq_testing import (
    DTYPES,
    assert_backward_equals_finite_differences,
    assert_backward_equals_vjp,
    normal,
)

import jaxbp
from jaxbp import layers as L


@st.composite
def attention_problems(draw, dtypes=DTYPES):
    """Batch B, length T, heads H, head width d (width C = H·d), dtype, seed."""
    return {
        "batch": draw(st.sampled_from([1, 3])),
        "steps": draw(st.sampled_from([1, 2, 5])),
        "heads": draw(st.sampled_from([1, 2, 3])),
        "head_width": draw(st.sampled_from([1, 4])),
        "dtype": draw(st.sampled_from(dtypes)),
        "seed": draw(st.integers(0, 2**31 - 1)),
    }


@functools.cache
def attention_layer(heads, dropout=0.0, textbook=False):
    """One layer per configuration: jit caches on its functions."""
    return L.causal_self_attention(heads, dropout, textbook=textbook)


def setup(problem, layer, *, params_std=0.5):
    """Params N(0, params_std²) (GPT-2's 0.02 makes every softmax nearly
    uniform), inputs x ~ N(0, 1) and a cotangent dy ~ N(0, 1)."""
    width = problem["heads"] * problem["head_width"]
    in_shape = (problem["steps"], width)
    out_shape, params, _ = layer.init(
        jax.random.key(problem["seed"]), in_shape, jnp.dtype(problem["dtype"])
    )
    params = jax.tree.map(
        lambda p, k: normal(k, p.shape, problem["dtype"]) * params_std,
        params,
        {name: problem["seed"] + i for i, name in enumerate(sorted(params))},
    )
    x = normal(problem["seed"] + 10, (problem["batch"], *in_shape), problem["dtype"])
    dy = normal(problem["seed"] + 11, (problem["batch"], *out_shape), problem["dtype"])
    return params, x, dy


@settings(max_examples=12)
@given(problem=attention_problems())
def test_attention_backward_equals_jax_vjp_under_jit_and_vmap(problem):
    layer = attention_layer(problem["heads"])
    params, x, dy = setup(problem, layer)
    dparams, dx = assert_backward_equals_vjp(layer, params, x, dy, problem["dtype"])
    assert dx.dtype == x.dtype and dparams["w_qkv"].dtype == x.dtype


@settings(max_examples=4)
@given(problem=attention_problems(dtypes=("float64",)))
def test_attention_backward_equals_finite_differences(problem):
    layer = attention_layer(problem["heads"])
    assert_backward_equals_finite_differences(layer, *setup(problem, layer))


def core_cache(problem, with_mask):
    """The cache of ``attention_forward`` on drawn q, k, v (and a dropout mask)."""
    shape = (
        problem["batch"],
        problem["steps"],
        problem["heads"],
        problem["head_width"],
    )
    q, k, v = (normal(problem["seed"] + i, shape, problem["dtype"]) for i in range(3))
    mask = None
    if with_mask:
        b, t, h = problem["batch"], problem["steps"], problem["heads"]
        key = jax.random.key(problem["seed"])
        mask = L.dropout_mask(key, 0.4, (b, h, t, t), jnp.dtype(problem["dtype"]))
    return L.attention_forward(q, k, v, mask=mask)


@settings(max_examples=8)
@given(problem=attention_problems(), with_mask=st.booleans())
def test_textbook_backward_equals_the_fast_one(problem, with_mask):
    y, cache = core_cache(problem, with_mask)
    dy = normal(problem["seed"] + 5, y.shape, problem["dtype"])
    fast = jax.jit(L.attention_backward)(cache, dy)
    textbook = jax.jit(L.attention_backward_textbook)(cache, dy)
    assert_trees_rel_close(fast, textbook, RTOL[problem["dtype"]])


@settings(max_examples=6)
@given(problem=attention_problems(), with_mask=st.booleans())
def test_core_backward_equals_jax_vjp(problem, with_mask):
    """dq, dk, dv of attention_backward against jax.vjp of attention_forward
    (with a fixed dropout mask on the weights)."""
    y, (q, k, v, _, mask) = core_cache(problem, with_mask)
    dy = normal(problem["seed"] + 5, y.shape, problem["dtype"])
    got = L.attention_backward(L.attention_forward(q, k, v, mask=mask)[1], dy)
    _, vjp = jax.vjp(
        lambda q, k, v: L.attention_forward(q, k, v, mask=mask)[0], q, k, v
    )
    reference = None
    if problem["dtype"] == "float32":
        q64, k64, v64, dy64, mask64 = as_float64((q, k, v, dy, mask))
        fwd = functools.partial(L.attention_forward, mask=mask64)
        reference = jax.vjp(lambda *a: fwd(*a)[0], q64, k64, v64)[1](dy64)
    assert_trees_rel_close(got, vjp(dy), RTOL[problem["dtype"]], reference)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_attention_dropout_with_a_fixed_key_equals_jax_vjp(dtype, train):
    """Dropout on the weights: the manual backward replays the forward's mask
    (the same key), against jax.vjp of the same forward pass."""
    problem = {"batch": 2, "steps": 5, "heads": 2, "head_width": 3}
    problem.update(dtype=dtype, seed=3)
    layer = attention_layer(2, dropout=0.5)
    params, x, dy = setup(problem, layer)
    key = jax.random.key(1)

    def forward(p, x):
        return layer.forward(p, (), x, key=key, train=train)

    def vjp(params, x, dy):
        return jax.vjp(lambda p, x: forward(p, x)[0], params, x)[1](dy)

    y, cache, _ = forward(params, x)
    got = layer.backward(params, cache, dy)
    reference = vjp(*as_float64((params, x, dy))) if dtype == "float32" else None
    assert_trees_rel_close(got, vjp(params, x, dy), RTOL[dtype], reference)
    evaluated = layer.forward(params, (), x)[0]
    assert bool(jnp.all(y == evaluated)) is (not train)


def test_attention_weights_are_causal_rows_of_a_softmax():
    problem = {"batch": 2, "steps": 6, "heads": 3, "head_width": 2}
    _, (_, _, _, p, _) = core_cache({**problem, "dtype": "float64", "seed": 0}, False)
    upper = ~np.asarray(L.causal_mask(6))
    assert np.all(np.asarray(p)[..., upper] == 0)
    np.testing.assert_allclose(np.sum(p, axis=-1), 1.0, rtol=1e-14)
    assert np.all(np.asarray(p)[..., ~upper] > 0)


@pytest.mark.parametrize("textbook", [False, True], ids=["fast", "textbook"])
@pytest.mark.parametrize("t", [0, 2, 4])
def test_no_gradient_from_a_later_position_to_an_earlier_one(t, textbook):
    """dy non-zero only at position t (dropout on, in training mode): dx is
    exactly 0 at every s > t."""
    problem = {"batch": 2, "steps": 5, "heads": 2, "head_width": 3}
    problem.update(dtype="float64", seed=t)
    layer = attention_layer(2, dropout=0.3, textbook=textbook)
    params, x, dy = setup(problem, layer)
    dy_t = jnp.zeros_like(dy).at[:, t].set(dy[:, t])
    _, cache, _ = layer.forward(params, (), x, key=jax.random.key(0), train=True)
    _, dx = layer.backward(params, cache, dy_t)
    assert np.all(np.asarray(dx)[:, t + 1 :] == 0)
    assert np.all(np.any(np.asarray(dx)[:, t] != 0, axis=-1))


def test_jacobian_of_the_manual_backward_is_block_lower_triangular():
    """jax.jacrev of the model through the custom-VJP bridge (so every row of
    the Jacobian comes from the hand-written backward): ∂out_t/∂x_s = 0
    exactly for s > t, and non-zero for s ≤ t."""
    steps, width = 4, 6
    model = jaxbp.sequential(
        attention_layer(2), in_shape=(steps, width), dtype=jnp.float64
    )
    problem = {"batch": 1, "steps": steps, "heads": 2, "head_width": 3}
    params, x, _ = setup({**problem, "dtype": "float64", "seed": 4}, attention_layer(2))
    f = jaxbp.as_jax_function(model)
    jacobian = np.asarray(jax.jacrev(lambda x: f((params,), x))(x))[0, :, :, 0]
    for t in range(steps):
        for s in range(steps):
            block = jacobian[t, :, s, :]
            assert np.all(block == 0) if s > t else np.any(block != 0), (t, s)


def test_later_inputs_do_not_change_earlier_outputs():
    problem = {"batch": 2, "steps": 5, "heads": 2, "head_width": 2}
    layer = attention_layer(2)
    params, x, _ = setup({**problem, "dtype": "float32", "seed": 1}, layer)
    y = layer.forward(params, (), x)[0]
    changed = layer.forward(params, (), x.at[:, 3:].add(5.0))[0]
    np.testing.assert_array_equal(y[:, :3], changed[:, :3])
    assert not np.allclose(y[:, 3:], changed[:, 3:])


def test_attention_errors_name_the_argument():
    with pytest.raises(ValueError, match="n_head must be a positive integer"):
        L.causal_self_attention(0)
    with pytest.raises(ValueError, match=r"dropout rate must be a number in \[0, 1\)"):
        L.causal_self_attention(2, 1.0)
    with pytest.raises(ValueError, match="width divisible by n_head; got width 5"):
        L.causal_self_attention(2).init(jax.random.key(0), (3, 5), jnp.float32)
    with pytest.raises(ValueError, match=r"per-example shape \(time, width\)"):
        L.causal_self_attention(2).init(jax.random.key(0), (4,), jnp.float32)
    layer = L.causal_self_attention(1, 0.5)
    _, params, _ = layer.init(jax.random.key(0), (3, 2), jnp.float32)
    with pytest.raises(ValueError, match="needs a PRNG key in training mode"):
        layer.forward(params, (), jnp.ones((1, 3, 2)), train=True)


def test_attention_init_is_gpt2s():
    layer = L.causal_self_attention(4, proj_init=jaxbp.initializers.normal(0.005))
    _, params, _ = layer.init(jax.random.key(0), (8, 64), jnp.float32)
    assert params["w_qkv"].shape == (64, 192) and params["w_proj"].shape == (64, 64)
    assert float(jnp.std(params["w_qkv"])) == pytest.approx(0.02, rel=0.05)
    assert float(jnp.std(params["w_proj"])) == pytest.approx(0.005, rel=0.05)
    assert not np.any(params["b_qkv"]) and not np.any(params["b_proj"])


# ------------------------------------------------------------ position embedding


@settings(max_examples=6)
@given(problem=attention_problems())
def test_position_embedding_backward_equals_jax_vjp(problem):
    layer = L.position_embedding(problem["steps"] + 2)
    params, x, dy = setup(problem, layer, params_std=1.0)
    dparams, _ = assert_backward_equals_vjp(layer, params, x, dy, problem["dtype"])
    # rows past the sequence length are not used: their gradient is exactly 0
    assert not np.any(np.asarray(dparams["table"])[problem["steps"] :])


@settings(max_examples=2)
@given(problem=attention_problems(dtypes=("float64",)))
def test_position_embedding_backward_equals_finite_differences(problem):
    layer = L.position_embedding(problem["steps"])
    assert_backward_equals_finite_differences(
        layer, *setup(problem, layer, params_std=1.0)
    )


def test_position_embedding_rejects_sequences_longer_than_its_table():
    with pytest.raises(
        ValueError, match="holds 4 positions; got sequences of length 5"
    ):
        L.position_embedding(4).init(jax.random.key(0), (5, 3), jnp.float32)
    with pytest.raises(ValueError, match="max_len must be a positive integer"):
        L.position_embedding(0)
