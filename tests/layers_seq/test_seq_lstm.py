"""The LSTM: hand-written backpropagation through time against jax.vjp and
finite differences, the state carried, and torch's equations (the initial-state
gradients: test_seq_recurrent.py)."""

import jax
import jax.numpy as jnp
import pytest
from helpers import assert_trees_rel_close
from hypothesis import given, settings
from recurrent_testing import (
    assert_last_state_and_carried_state,
    assert_recurrent_backward_equals_vjp,
    recurrent_problem,
)
from seq_testing import (
    assert_backward_equals_finite_differences,
    normal,
    sequence_problems,
)

from jaxbp import layers as L


def setup(problem, return_sequences):
    return recurrent_problem(L.lstm, problem, return_sequences)


@pytest.mark.parametrize("return_sequences", [True, False])
@settings(max_examples=6)
@given(problem=sequence_problems())
def test_lstm_backward_equals_jax_vjp_under_jit_and_vmap(problem, return_sequences):
    assert_recurrent_backward_equals_vjp(setup, problem, return_sequences)


@settings(max_examples=2)
@given(problem=sequence_problems(dtypes=("float64",)))
def test_lstm_backward_equals_finite_differences(problem):
    assert_backward_equals_finite_differences(*setup(problem, True))


def test_lstm_last_state_and_carried_state():
    """return_sequences=False gives h_T; running two chunks with the state
    carried equals one run over the whole sequence."""
    assert_last_state_and_carried_state(L.lstm, L.lstm_forward)


def test_lstm_forward_is_torch_equations():
    """One step written out from torch.nn.LSTM's documentation, gate order (i, f, g, o)."""
    layer = L.lstm(2)
    _, p, _ = layer.init(jax.random.key(1), (1, 3), jnp.float64)
    p = {
        k: v + normal(5, v.shape, "float64") for k, v in p.items()
    }  # every bias nonzero
    x = normal(2, (4, 1, 3), "float64")
    h0, c0 = normal(3, (2, 4, 2), "float64")
    _, (h1, c1), _ = L.lstm_forward(p, x, h0, c0)
    w_ii, w_if, w_ig, w_io = jnp.split(p["w_ih"], 4)
    w_hi, w_hf, w_hg, w_ho = jnp.split(p["w_hh"], 4)
    b_ii, b_if, b_ig, b_io = jnp.split(p["b_ih"], 4)
    b_hi, b_hf, b_hg, b_ho = jnp.split(p["b_hh"], 4)
    xt = x[:, 0]
    i = jax.nn.sigmoid(xt @ w_ii.T + b_ii + h0 @ w_hi.T + b_hi)
    f = jax.nn.sigmoid(xt @ w_if.T + b_if + h0 @ w_hf.T + b_hf)
    g = jnp.tanh(xt @ w_ig.T + b_ig + h0 @ w_hg.T + b_hg)
    o = jax.nn.sigmoid(xt @ w_io.T + b_io + h0 @ w_ho.T + b_ho)
    c = f * c0 + i * g
    assert_trees_rel_close((h1, c1), (o * jnp.tanh(c), c), 1e-14)


def test_lstm_init_forget_bias_and_shapes():
    shape, p, state = L.lstm(4).init(jax.random.key(0), (7, 3), jnp.float32)
    assert shape == (7, 4) and state == ()
    assert p["w_ih"].shape == (16, 3) and p["w_hh"].shape == (16, 4)
    assert jnp.all(p["b_ih"][4:8] == 1) and jnp.all(p["b_ih"][:4] == 0)
    assert jnp.all(p["b_hh"] == 0)
    assert jnp.max(jnp.abs(p["w_hh"])) <= 0.5  # U(−1/√H, 1/√H), H = 4
    assert L.lstm(4, return_sequences=False).init(jax.random.key(0), (7, 3))[0] == (4,)


def test_lstm_bad_arguments():
    with pytest.raises(ValueError, match="lstm hidden size must be a positive integer"):
        L.lstm(0)
    with pytest.raises(ValueError, match=r"per-example shape \(time, features\)"):
        L.lstm(3).init(jax.random.key(0), (5,), jnp.float32)
