"""The GRU: hand-written backpropagation through time against jax.vjp and
finite differences, the state carried, and torch's equations (the initial-state
gradient: test_seq_recurrent.py)."""

import jax
import jax.numpy as jnp
import pytest
from helpers import assert_trees_rel_close
from hypothesis import given, settings
from recurrent_testing import (
    assert_last_state_and_carried_state,
    assert_recurrent_backward_equals_vjp,
    recurrent_problem,
    with_nonzero_biases,
)
from seq_testing import (
    assert_backward_equals_finite_differences,
    normal,
    sequence_problems,
)

from jaxbp import layers as L


def setup(problem, return_sequences):
    layer, params, x, dy = recurrent_problem(L.gru, problem, return_sequences)
    return layer, with_nonzero_biases(params, problem), x, dy


@pytest.mark.parametrize("return_sequences", [True, False])
@settings(max_examples=6)
@given(problem=sequence_problems())
def test_gru_backward_equals_jax_vjp_under_jit_and_vmap(problem, return_sequences):
    assert_recurrent_backward_equals_vjp(setup, problem, return_sequences)


@settings(max_examples=2)
@given(problem=sequence_problems(dtypes=("float64",)))
def test_gru_backward_equals_finite_differences(problem):
    assert_backward_equals_finite_differences(*setup(problem, True))


def test_gru_last_state_and_carried_state():
    """return_sequences=False gives h_T; running two chunks with the state
    carried equals one run over the whole sequence."""
    assert_last_state_and_carried_state(L.gru, L.gru_forward)


def test_gru_forward_is_torch_equations():
    """One step written out from torch.nn.GRU's documentation, gate order (r, z, n)."""
    _, p, _ = L.gru(2).init(jax.random.key(1), (1, 3), jnp.float64)
    p = {k: v + normal(5, v.shape, "float64") for k, v in p.items()}
    x = normal(2, (4, 1, 3), "float64")
    h0 = normal(3, (4, 2), "float64")
    _, h1, _ = L.gru_forward(p, x, h0)
    w_ir, w_iz, w_in = jnp.split(p["w_ih"], 3)
    w_hr, w_hz, w_hn = jnp.split(p["w_hh"], 3)
    b_ir, b_iz, b_in = jnp.split(p["b_ih"], 3)
    b_hr, b_hz, b_hn = jnp.split(p["b_hh"], 3)
    xt = x[:, 0]
    r = jax.nn.sigmoid(xt @ w_ir.T + b_ir + h0 @ w_hr.T + b_hr)
    z = jax.nn.sigmoid(xt @ w_iz.T + b_iz + h0 @ w_hz.T + b_hz)
    n = jnp.tanh(xt @ w_in.T + b_in + r * (h0 @ w_hn.T + b_hn))
    assert_trees_rel_close(h1, (1 - z) * n + z * h0, 1e-14)


def test_gru_init_and_bad_arguments():
    shape, p, state = L.gru(4).init(jax.random.key(0), (7, 3), jnp.float32)
    assert shape == (7, 4) and state == ()
    assert p["w_ih"].shape == (12, 3) and p["w_hh"].shape == (12, 4)
    assert jnp.max(jnp.abs(p["w_ih"])) <= 0.5  # U(−1/√H, 1/√H), H = 4
    assert L.gru(4, return_sequences=False).init(jax.random.key(0), (7, 3))[0] == (4,)
    with pytest.raises(ValueError, match="gru hidden size must be a positive integer"):
        L.gru(True)
    with pytest.raises(ValueError, match=r"per-example shape \(time, features\)"):
        L.gru(3).init(jax.random.key(0), (5,), jnp.float32)
