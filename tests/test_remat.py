"""Gradient checkpointing: same gradients as the plain model, less memory under jit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RTOL, assert_trees_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxbp
from jaxbp import layers as L
from jaxbp.layers import Layer, SegmentCache, activation, checkpointed, dense
from jaxbp.remat import (
    checkpoint_model,
    checkpointed_mlp,
    default_segment_size,
    group_params,
    segment_lengths,
    ungroup_params,
)

ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid")


def _problem(depth, width, batch, n_out, dtype, seed, activation_name="tanh"):
    sizes = [3] + [width] * depth + [n_out]
    plain = jaxbp.mlp(sizes, activation_name, dtype=dtype)
    params = plain.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, 3)), dtype)
    y = jnp.asarray(rng.integers(0, n_out, size=batch), jnp.int32)
    return sizes, plain, params, x, y


@st.composite
def remat_problems(draw):
    return {
        "depth": draw(st.integers(0, 5)),  # hidden layers
        "segment_size": draw(st.integers(1, 4)),
        "checkpoint_last": draw(st.booleans()),
        "activation": draw(st.sampled_from(ACTIVATIONS)),
        "dtype": draw(st.sampled_from(("float32", "float64"))),
        "batch": draw(st.sampled_from([1, 4])),
        "seed": draw(st.integers(0, 2**16)),
    }


def _build(p):
    sizes, plain, params, x, y = _problem(
        p["depth"], 5, p["batch"], 3, p["dtype"], p["seed"], p["activation"]
    )
    ckpt = checkpointed_mlp(
        sizes,
        p["activation"],
        p["segment_size"],
        dtype=p["dtype"],
        checkpoint_last=p["checkpoint_last"],
    )
    return plain, params, ckpt, group_params(params, ckpt), x, y


@settings(max_examples=8)
@given(remat_problems())
def test_checkpointed_gradients_equal_plain_under_jit(p):
    plain, params, ckpt, ckpt_params, x, y = _build(p)
    rtol = RTOL[p["dtype"]]

    def grads(model, params, backprop):
        fn = jax.jit(lambda q: jaxbp.loss_and_grad(model, q, x, y, backprop=backprop))
        return fn(params)

    value, want = grads(plain, params, "manual")
    for backprop in ("manual", "autodiff"):
        got_value, got = grads(ckpt, ckpt_params, backprop)
        chex.assert_trees_all_equal_shapes_and_dtypes(got, ckpt_params)
        np.testing.assert_allclose(got_value, value, rtol=rtol)
        assert_trees_rel_close(ungroup_params(got), want, rtol)


@settings(max_examples=5)
@given(remat_problems())
def test_checkpointed_per_example_gradients_under_vmap(p):
    plain, params, ckpt, ckpt_params, x, y = _build(p)

    def per_example(model, params):
        def one(xi, yi):
            return jaxbp.loss_and_grad(model, params, xi[None], yi[None])

        return jax.jit(jax.vmap(one))(x, y)

    values, want = per_example(plain, params)
    got_values, got = per_example(ckpt, ckpt_params)
    np.testing.assert_allclose(got_values, values, rtol=RTOL[p["dtype"]])
    assert_trees_rel_close(ungroup_params(got), want, RTOL[p["dtype"]])


def test_checkpointed_eagerly_equals_plain_manual_and_autodiff():
    dtype = "float64"
    sizes, plain, params, x, y = _problem(2, 6, 4, 3, dtype, 0, "gelu")
    ckpt = checkpointed_mlp(sizes, "gelu", 2, dtype=dtype)
    cparams = group_params(params, ckpt)
    _, want = jaxbp.loss_and_grad(plain, params, x, y, backprop="autodiff")
    for backprop in ("manual", "autodiff"):
        _, got = jaxbp.loss_and_grad(ckpt, cparams, x, y, backprop=backprop)
        assert_trees_rel_close(ungroup_params(got), want, RTOL[dtype])


# ------------------------------------------------------------- key and state


def _noise_layer() -> Layer:
    """A random layer: y = x * (1 + u), u ~ U(0, 1) from the key (in training)."""

    def init(key, in_shape, dtype=None):
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        if not train:
            return x, None, state
        m = 1 + jax.random.uniform(key, x.shape, x.dtype)
        return x * m, m, state

    def backward(params, m, dy):
        return (), dy if m is None else dy * m

    return Layer("noise", init, forward, backward)


def _counter_layer() -> Layer:
    """A stateful layer: y = x + state; the state counts forward passes."""

    def init(key, in_shape, dtype=None):
        return tuple(in_shape), (), jnp.zeros((), jnp.float32)

    def forward(params, state, x, *, key=None, train=False):
        return x + state.astype(x.dtype), None, state + 1

    def backward(params, cache, dy):
        return (), dy

    return Layer("counter", init, forward, backward)


@pytest.mark.parametrize("train", [True, False])
def test_recomputation_reuses_key_and_state(train):
    layers = (
        dense(4),
        _noise_layer(),
        _counter_layer(),
        activation("tanh"),
        dense(4),
        _noise_layer(),
        dense(2),
    )
    plain = jaxbp.sequential(*layers, in_shape=(3,), dtype="float64")
    ckpt = jaxbp.sequential(
        checkpointed(*layers[:4]),
        checkpointed(*layers[4:]),
        in_shape=(3,),
        dtype="float64",
    )
    params, state = plain.init_with_state(jax.random.key(1))
    state = (state[0], state[1], jnp.asarray(2.0, jnp.float32), *state[3:])
    cparams, cstate = group_params(params, ckpt), group_params(state, ckpt)
    x = jax.random.normal(jax.random.key(2), (5, 3), jnp.float64)
    y = jnp.array([0, 1, 1, 0, 1], jnp.int32)
    key = jax.random.key(3)
    want = jax.jit(
        lambda: jaxbp.forward_backward(
            plain, params, x, y, state=state, key=key, train=train, backprop="autodiff"
        )
    )()
    # keys are split per segment, then per layer: the checkpointed model draws
    # other noise than the plain one, so in training compare it with autodiff
    # of itself (which differentiates the very forward pass it recomputes)
    auto = jax.jit(
        lambda: jaxbp.forward_backward(
            ckpt, cparams, x, y, state=cstate, key=key, train=train, backprop="autodiff"
        )
    )()
    for backprop in ("manual", "autodiff"):
        got = jax.jit(
            lambda p, s, b=backprop: jaxbp.forward_backward(
                ckpt, p, x, y, state=s, key=key, train=train, backprop=b
            )
        )(cparams, cstate)
        assert_trees_rel_close(got.grads, auto.grads, 1e-10)
        np.testing.assert_allclose(got.output, auto.output, rtol=1e-12)
        # the state advanced once (the recomputation's new state is dropped)
        assert_trees_rel_close(ungroup_params(got.state), want.state, 0)
        if not train:
            np.testing.assert_allclose(got.output, want.output, rtol=1e-12)
            assert_trees_rel_close(ungroup_params(got.grads), want.grads, 1e-10)


def test_random_segment_manual_equals_autodiff_of_same_model():
    layers = (dense(6), _noise_layer(), activation("relu"), dense(3))
    ckpt = jaxbp.sequential(
        checkpointed(*layers[:3]), checkpointed(layers[3]), in_shape=(4,)
    )
    params = ckpt.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (7, 4), jnp.float32)
    y = jnp.arange(7, dtype=jnp.int32) % 3
    key = jax.random.key(5)
    _, manual = jax.jit(lambda: jaxbp.loss_and_grad(ckpt, params, x, y, key=key))()
    _, auto = jax.jit(
        lambda: jaxbp.loss_and_grad(ckpt, params, x, y, key=key, backprop="autodiff")
    )()
    assert_trees_rel_close(manual, auto, RTOL["float32"])


# ------------------------------------------------------------- textbook form


@settings(max_examples=6)
@given(
    train=st.booleans(),
    activation_name=st.sampled_from(ACTIVATIONS),
    dtype=st.sampled_from(("float32", "float64")),
    seed=st.integers(0, 2**16),
)
def test_fenced_recomputation_equals_the_textbook_one(
    train, activation_name, dtype, seed
):
    """The layer's backward (the recomputation inside an opaque lax.cond) and
    the textbook one (forward again, then backward): the same numbers, with
    the same key and state reused, under jit."""
    layers = (
        dense(4),
        _noise_layer(),
        _counter_layer(),
        activation(activation_name),
        dense(3),
    )
    segment = checkpointed(*layers)
    _, params, state = segment.init(jax.random.key(seed), (3,), jnp.dtype(dtype))
    x = jax.random.normal(jax.random.key(seed + 1), (5, 3), dtype)
    dy = jax.random.normal(jax.random.key(seed + 2), (5, 3), dtype)
    key = jax.random.key(seed + 3)

    @jax.jit
    def both(params, state, x, dy):
        _, cache, _ = segment.forward(params, state, x, key=key, train=train)
        return (
            L.checkpointed_backward(params, cache, dy, layers=layers),
            L.checkpointed_backward_textbook(params, cache, dy, layers=layers),
        )

    fenced, textbook = both(params, state, x, dy)
    chex.assert_trees_all_equal_dtypes(fenced, textbook)
    assert_trees_rel_close(fenced, textbook, RTOL[dtype])
    # and the layer's backward is the fenced one
    _, cache, _ = segment.forward(params, state, x, key=key, train=train)
    assert_trees_rel_close(segment.backward(params, cache, dy), textbook, RTOL[dtype])


# ------------------------------------------------------------- memory


def _temp_mib(model, params, x, y, backprop="manual"):
    fn = jax.jit(lambda p: jaxbp.loss_and_grad(model, p, x, y, backprop=backprop))
    stats = fn.lower(params).compile().memory_analysis()
    if stats is None:
        pytest.skip("this backend reports no memory analysis")
    return stats.temp_size_in_bytes / 2**20


def test_checkpointing_saves_memory_under_jit():
    """XLA must not merge the recomputation back into the forward pass (CSE):
    the temp memory of the jitted gradient has to shrink."""
    sizes = [16] + [64] * 12 + [10]
    plain = jaxbp.mlp(sizes, "relu", dtype=jnp.float32)
    params = plain.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (64, 16), jnp.float32)
    y = jnp.arange(64, dtype=jnp.int32) % 10
    ckpt = checkpointed_mlp(sizes, "relu", dtype=jnp.float32)
    plain_mib = _temp_mib(plain, params, x, y)
    ckpt_mib = _temp_mib(ckpt, group_params(params, ckpt), x, y)
    assert ckpt_mib < 0.6 * plain_mib, (plain_mib, ckpt_mib)


# ------------------------------------------------------------- no differentiation

# no_differentiation: the fixture in conftest.py


def test_manual_path_calls_no_jax_differentiation(no_differentiation):
    sizes = [4, 5, 5, 5, 3]
    model = checkpointed_mlp(sizes, "tanh", 1, dtype=jnp.float32)
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 4), jnp.float32)
    y = jnp.array([0, 1, 2, 1, 0, 2], jnp.int32)
    jaxbp.loss_and_grad(model, params, x, y)  # eager
    jax.jit(lambda p: jaxbp.loss_and_grad(model, p, x, y))(params)
    jax.vmap(lambda xi, yi: jaxbp.loss_and_grad(model, params, xi[None], yi[None]))(
        x, y
    )
    with pytest.raises(AssertionError, match="jax differentiation called"):
        jaxbp.loss_and_grad(model, params, x, y, backprop="autodiff")


# ------------------------------------------------------------- helpers


def test_segment_helpers():
    assert segment_lengths(7, 3) == (3, 3, 1)
    assert segment_lengths(6, 3) == (3, 3)
    assert default_segment_size(16) == 4 and default_segment_size(1) == 1
    with pytest.raises(ValueError, match="segment_size"):
        segment_lengths(4, 0)
    with pytest.raises(ValueError, match="at least one layer"):
        checkpointed()
    with pytest.raises(TypeError, match="jaxbp Layers"):
        checkpointed("dense")

    sizes = [3, 4, 4, 4, 4, 2]  # 5 dense layers, 9 layers
    model = checkpointed_mlp(sizes, "relu", 2)
    assert [layer.name for layer in model.layers] == [
        "checkpointed",
        "checkpointed",
        "segment",
    ]
    params = model.init(jax.random.key(0))
    assert [len(p) for p in params] == [4, 4, 1]
    chex.assert_trees_all_equal(group_params(ungroup_params(params), model), params)
    with pytest.raises(ValueError, match="segments"):
        group_params(ungroup_params(params)[:-1], model)

    generic = checkpoint_model(jaxbp.mlp(sizes, "relu"), 4, checkpoint_last=True)
    assert [layer.name for layer in generic.layers] == ["checkpointed"] * 3
    assert generic.out_shape == (2,)


def test_cache_holds_only_the_segment_input():
    layer = checkpointed(dense(8), activation("relu"), dense(8))
    _, params, state = layer.init(jax.random.key(0), (3,), jnp.float32)
    x = jnp.ones((2, 3), jnp.float32)
    y, cache, _ = layer.forward(params, state, x, key=None, train=True)
    assert isinstance(cache, SegmentCache) and cache.train is True
    leaves = jax.tree.leaves(cache)
    assert len(leaves) == 1 and leaves[0] is x
    assert y.shape == (2, 8)
