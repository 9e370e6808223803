"""The embedding: a row lookup whose backward is a scatter-add, against jax.vjp
(jit, vmap, float32/float64) and finite differences, alone and under a recurrent layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_rel_close
from hypothesis import given, settings
from seq_testing import (
    assert_backward_equals_finite_differences,
    assert_backward_equals_vjp,
    normal,
    sequence_problems,
)

from jaxbp import layers as L


def setup(problem, layer):
    out_shape, params, _ = layer.init(
        jax.random.key(problem["seed"]),
        (problem["steps"],),
        jnp.dtype(problem["dtype"]),
    )
    rng = np.random.default_rng(problem["seed"])
    tokens = jnp.asarray(
        rng.integers(0, problem["vocab"], size=(problem["batch"], problem["steps"])),
        jnp.int32,
    )
    dy = normal(problem["seed"] + 1, (problem["batch"], *out_shape), problem["dtype"])
    return params, tokens, dy


@settings(max_examples=6)
@given(problem=sequence_problems())
def test_embedding_backward_equals_jax_vjp_under_jit_and_vmap(problem):
    layer = L.embedding(problem["vocab"], problem["features"])
    params, tokens, dy = setup(problem, layer)
    (dparams,) = assert_backward_equals_vjp(layer, params, tokens, dy, problem["dtype"])
    assert dparams["table"].dtype == params["table"].dtype


@settings(max_examples=4)
@given(problem=sequence_problems())
def test_embedding_under_lstm_in_serial_equals_jax_vjp(problem):
    layer = L.serial(
        L.embedding(problem["vocab"], problem["features"]),
        L.lstm(problem["hidden"]),
        L.gru(problem["hidden"], return_sequences=False),
    )
    params, tokens, dy = setup(problem, layer)
    state = ((), (), ())
    assert_backward_equals_vjp(layer, params, tokens, dy, problem["dtype"], state)


@settings(max_examples=2)
@given(problem=sequence_problems(dtypes=("float64",)))
def test_embedding_backward_equals_finite_differences(problem):
    layer = L.embedding(problem["vocab"], problem["features"])
    assert_backward_equals_finite_differences(layer, *setup(problem, layer))


def test_embedding_repeated_tokens_accumulate_and_unused_rows_get_zero():
    layer = L.embedding(5, 2)
    _, params, _ = layer.init(jax.random.key(0), (3,), jnp.float64)
    tokens = jnp.array([[1, 1, 3], [1, 0, 3]])
    dy = normal(0, (2, 3, 2), "float64")
    y, cache, _ = layer.forward(params, (), tokens)
    assert_trees_rel_close(y, params["table"][tokens], 0.0)
    grads, dx = layer.backward(params, cache, dy)
    assert dx is None
    want = jnp.stack(
        [
            dy[1, 1],
            dy[0, 0] + dy[0, 1] + dy[1, 0],
            jnp.zeros(2),
            dy[0, 2] + dy[1, 2],
            jnp.zeros(2),
        ]
    )
    assert_trees_rel_close(grads["table"], want, 1e-15)


def test_embedding_init_and_bad_arguments():
    shape, p, state = L.embedding(50, 8).init(jax.random.key(0), (4,), jnp.float64)
    assert shape == (4, 8) and state == () and p["table"].shape == (50, 8)
    assert 0.7 < float(jnp.std(p["table"])) < 1.3  # N(0, 1)
    with pytest.raises(ValueError, match="embedding vocab_size must be a positive"):
        L.embedding(0, 3)
    with pytest.raises(ValueError, match="embedding dim must be a positive"):
        L.embedding(3, 2.0)
    with pytest.raises(ValueError, match=r"per-example shape \(time,\)"):
        L.embedding(3, 2).init(jax.random.key(0), (4, 2), jnp.float32)
