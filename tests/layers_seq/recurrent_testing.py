"""The harness the recurrent layers' tests (test_seq_gru, test_seq_lstm) share:
the layer and its inputs for a drawn problem, its backward against jax.vjp, and
the run in two chunks with the state carried."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from helpers import assert_trees_rel_close
from seq_testing import assert_backward_equals_vjp, normal


def recurrent_problem(make_layer, problem, return_sequences):
    """(layer, params, x, dy) for ``make_layer(H, return_sequences=...)`` on the
    sizes of ``problem`` (``seq_testing.sequence_problems``): the layer's own
    initial parameters, x (B, T, D) and dy (B, *output shape) standard normal."""
    layer = make_layer(problem["hidden"], return_sequences=return_sequences)
    in_shape = (problem["steps"], problem["features"])
    out_shape, params, _ = layer.init(
        jax.random.key(problem["seed"]), in_shape, jnp.dtype(problem["dtype"])
    )
    x = normal(problem["seed"], (problem["batch"], *in_shape), problem["dtype"])
    dy = normal(problem["seed"] + 1, (problem["batch"], *out_shape), problem["dtype"])
    return layer, params, x, dy


def assert_recurrent_backward_equals_vjp(setup, problem, return_sequences):
    """``seq_testing.assert_backward_equals_vjp`` on ``setup(problem,
    return_sequences)``'s (layer, params, x, dy), and dx has x's shape and dtype."""
    layer, params, x, dy = setup(problem, return_sequences)
    _, dx = assert_backward_equals_vjp(layer, params, x, dy, problem["dtype"])
    assert dx.shape == x.shape and dx.dtype == x.dtype


def assert_last_state_and_carried_state(make_layer, forward):
    """``return_sequences=False`` gives h_T; ``forward(params, x, *state)`` run on
    two chunks, the second from the first's final state ((h_T) or (h_T, c_T)),
    equals one run over the whole sequence."""
    layer = make_layer(3, return_sequences=True)
    _, params, _ = layer.init(jax.random.key(0), (6, 2), jnp.float64)
    x = normal(0, (4, 6, 2), "float64")
    every, _, _ = layer.forward(params, (), x)
    last, _, _ = make_layer(3, return_sequences=False).forward(params, (), x)
    assert_trees_rel_close(last, every[:, -1], 0.0)
    hs_a, state, _ = forward(params, x[:, :4])
    hs_b, _, _ = forward(params, x[:, 4:], *jax.tree.leaves(state))
    assert_trees_rel_close(
        jnp.concatenate([hs_a, hs_b]), jnp.swapaxes(every, 0, 1), 1e-14
    )
