"""The harness the recurrent layers' tests (test_seq_rnn, test_seq_gru,
test_seq_lstm, test_seq_recurrent) share: the layer and its inputs for a drawn
problem, its backward against jax.vjp, the gradients of the initial state
against jax.vjp and finite differences, and the run in two chunks with the
state carried."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from helpers import RTOL, as_float64, assert_trees_rel_close
from seq_testing import (
    assert_backward_equals_vjp,
    assert_close_to_finite_differences,
    normal,
)

from jaxbp.gradcheck import finite_difference_grads


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


def with_nonzero_biases(params, problem):
    """``params`` with standard-normal terms added to every bias (``b``,
    ``b_ih``, ``b_hh``): the GRU's b_hn enters through its reset gate, and a
    zero bias would hide a term left out of a backward."""
    seed, dtype = problem["seed"] + 9, problem["dtype"]
    return {
        k: v + normal(seed, v.shape, dtype) * (k[0] == "b") for k, v in params.items()
    }


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


def state_problem(problem, n_states: int):
    """(initial state, dhs, d final state) on ``problem``'s sizes: the
    initial state and the cotangents (of every h_t, (T, B, H), and of the
    final state) standard normal, in ``problem``'s dtype; a state is a tuple
    of ``n_states`` arrays (B, H): (h,), or (h, c) for the LSTM."""
    b, t, h, dtype = (problem[k] for k in ("batch", "steps", "hidden", "dtype"))
    seed = problem["seed"]
    state = tuple(normal(seed + 2 + i, (b, h), dtype) for i in range(n_states))
    dhs = normal(seed + 5, (t, b, h), dtype)
    dfinal = tuple(normal(seed + 6 + i, (b, h), dtype) for i in range(n_states))
    return state, dhs, dfinal


def _state_grads(forward, backward, params, x, state, dhs, dfinal):
    """(manual (grads, dx, d initial state), jax.vjp's), under jit; the
    state's gradients as a flat tuple."""

    @jax.jit
    def manual(params, x, state, dhs, dfinal):
        _, _, cache = forward(params, x, *state)
        grads, dx, dstate = backward(params, cache, dhs, *dfinal)
        return grads, dx, tuple(jax.tree.leaves(dstate))

    @jax.jit
    def reference(params, x, state, dhs, dfinal):
        def outputs(params, x, *state):
            hs, final, _ = forward(params, x, *state)
            return hs, tuple(jax.tree.leaves(final))

        _, vjp = jax.vjp(outputs, params, x, *state)
        grads, dx, *dstate = vjp((dhs, dfinal))
        return grads, dx, tuple(dstate)

    args = (params, x, state, dhs, dfinal)
    return manual(*args), reference(*args)


def assert_state_backward_equals_vjp(forward, backward, params, x, problem, n_states):
    """From a drawn initial state, with ∂L/∂h_t and ∂L/∂(final state) both
    nonzero: ``backward``'s (grads, dx, d initial state) = jax.vjp of
    ``forward``'s (hs, final state), under jit, for the batch and vmapped
    per example (a batch of one each)."""
    state, dhs, dfinal = state_problem(problem, n_states)
    rtol = RTOL[problem["dtype"]]
    got, want = _state_grads(forward, backward, params, x, state, dhs, dfinal)
    reference = None
    if problem["dtype"] != "float64":
        args = as_float64((params, x, state, dhs, dfinal))
        reference = _state_grads(forward, backward, *args)[1]
    assert_trees_rel_close(got, want, rtol, reference)

    def one(x, state, dhs, dfinal):  # one example, as a batch of one
        batch_of_one = jax.tree.map(lambda a: a[None], (x, state, dfinal))
        x1, state1, dfinal1 = batch_of_one
        return _state_grads(
            forward, backward, params, x1, state1, dhs[:, None], dfinal1
        )

    got_1, want_1 = jax.vmap(one, in_axes=(0, 0, 1, 0))(x, state, dhs, dfinal)
    assert_trees_rel_close(got_1, want_1, rtol)


def assert_state_backward_equals_finite_differences(
    forward, backward, params, x, problem, n_states
):
    """float64: ``backward``'s gradient of the initial state = centred finite
    differences of Σ hs ⊙ dhs + Σ final ⊙ d final (the weights' and x's are
    checked through the layer, ``seq_testing``)."""
    state, dhs, dfinal = state_problem(problem, n_states)
    _, _, cache = forward(params, x, *state)
    _, _, dstate = backward(params, cache, dhs, *dfinal)

    def value(state):
        hs, final, _ = forward(params, x, *state)
        pairs = zip(jax.tree.leaves(final), dfinal)
        return jnp.sum(hs * dhs) + sum(jnp.sum(f * d) for f, d in pairs)

    fd = finite_difference_grads(value, state)
    assert_close_to_finite_differences(tuple(jax.tree.leaves(dstate)), fd)
