"""What the recurrent layers share: the gradients of the initial state from
each hand-written backward (RNN, LSTM, GRU), with ∂L/∂h_t and ∂L/∂(final
state) both nonzero, against jax.vjp under jit and vmap and against finite
differences."""

import pytest
from hypothesis import given, settings
from recurrent_testing import (
    assert_state_backward_equals_finite_differences,
    assert_state_backward_equals_vjp,
    recurrent_problem,
    with_nonzero_biases,
)
from seq_testing import sequence_problems

from jaxbp import layers as L

#: Each recurrent layer and the arrays in its state: (h,), or (h, c) for the LSTM.
STATES = {"rnn": 1, "lstm": 2, "gru": 1}


def functions_and_inputs(kind, problem):
    """(``kind_forward``, ``kind_backward``, params with nonzero biases, x)."""
    _, params, x, _ = recurrent_problem(getattr(L, kind), problem, True)
    forward, backward = getattr(L, f"{kind}_forward"), getattr(L, f"{kind}_backward")
    return forward, backward, with_nonzero_biases(params, problem), x


@pytest.mark.parametrize("kind", list(STATES))
@settings(max_examples=4)
@given(problem=sequence_problems())
def test_initial_state_gradients_equal_jax_vjp_under_jit_and_vmap(kind, problem):
    """dh_0 (and dc_0) from the backward, given ∂L/∂ of the final state,
    equal jax.vjp of the forward's (hs, final state) from a drawn state."""
    assert_state_backward_equals_vjp(
        *functions_and_inputs(kind, problem), problem, STATES[kind]
    )


@pytest.mark.parametrize("kind", list(STATES))
@settings(max_examples=2)
@given(problem=sequence_problems(dtypes=("float64",)))
def test_initial_state_gradients_equal_finite_differences(kind, problem):
    assert_state_backward_equals_finite_differences(
        *functions_and_inputs(kind, problem), problem, STATES[kind]
    )
