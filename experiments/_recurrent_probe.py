"""Recurrent pieces the sequence experiments share, on jaxbp's functional layers.

- ``sequence_forward`` / ``sequence_backward``: the RNN, LSTM or GRU from a
  given state (``jaxbp.layers.rnn_forward``, ``lstm_forward``, ``gru_forward``
  take h0, and c0 for the LSTM), the state as a tuple ((h,) or (h, c)).
- ``cell_forward`` / ``cell_backward``: one step of an RNN, LSTM or GRU
  through the library's functional forward and hand-written backward (length-1
  sequences), with the recurrent state as a tuple ((h,) or (h, c)).
- ``state_grads``: ∂L/∂h_t at every t from the hand-written backward, run one
  step at a time so its reverse-time carries (what the full-sequence backward
  keeps inside its ``lax.scan``) are exposed; ``state_grads_autodiff`` is the
  same from ``jax.grad`` (a perturbation added to each h_t), for the check.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp.layers import (
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)

KINDS = ("rnn", "lstm", "gru")


def zero_state(kind: str, batch: int, hidden: int, dtype=jnp.float32):
    """The initial recurrent state: (h,) or (h, c) for the LSTM, zeros."""
    h = jnp.zeros((batch, hidden), dtype)
    return (h, h) if kind == "lstm" else (h,)


def sequence_forward(kind, params, x, state):
    """Every h_t (T, B, H), the final state tuple and the cache, from ``state``."""
    if kind == "lstm":
        return lstm_forward(params, x, *state)
    forward = rnn_forward if kind == "rnn" else gru_forward
    hs, h_last, cache = forward(params, x, state[0])
    return hs, (h_last,), cache


def sequence_backward(kind, params, cache, dhs, dstate):
    """(grads, dx, dstate_0) given dhs (T, B, H) and ∂L/∂(final state)."""
    if kind == "lstm":
        return lstm_backward(params, cache, dhs, *dstate)
    backward = rnn_backward if kind == "rnn" else gru_backward
    grads, dx, dh0 = backward(params, cache, dhs, dstate[0])
    return grads, dx, (dh0,)


def cell_forward(kind, params, x_t, state):
    """One step from ``state`` on x_t (B, D): (new state tuple, cache)."""
    _, final, cache = sequence_forward(kind, params, x_t[:, None], state)
    return final, cache


def cell_backward(kind, params, cache, dstate):
    """One step back: ∂L/∂(previous state) from ∂L/∂(this step's state)."""
    zeros = jnp.zeros((1, *dstate[0].shape), dstate[0].dtype)
    return sequence_backward(kind, params, cache, zeros, dstate)[2]


def states_along(kind, params, x, state0):
    """The state before every step: a tuple of (T, B, H) arrays."""

    def step(state, x_t):
        new, _ = cell_forward(kind, params, x_t, state)
        return new, state

    return lax.scan(step, state0, jnp.swapaxes(x, 0, 1))[1]


def state_grads(kind, params, x, state0, dstate_last):
    """‖·‖-ready ∂L/∂h_t, (T, B, H), for a loss on the final state whose
    gradient is ``dstate_last``: the hand-written backward one step at a time
    (each step re-runs that step's forward for its cache)."""
    before = states_along(kind, params, x, state0)

    def step(dstate, inputs):
        x_t, state_prev = inputs
        _, cache = cell_forward(kind, params, x_t, state_prev)
        return cell_backward(kind, params, cache, dstate), dstate[0]

    inputs = (jnp.swapaxes(x, 0, 1), before)
    return lax.scan(step, dstate_last, inputs, reverse=True)[1]


def state_grads_autodiff(kind, params, x, state0, loss_of_final):
    """∂L/∂h_t (T, B, H) by ``jax.grad``: L(h_T) with ε_t added to every h_t."""

    def loss(eps):
        def step(state, inputs):
            x_t, eps_t = inputs
            new, _ = cell_forward(kind, params, x_t, state)
            return (new[0] + eps_t, *new[1:]), None

        final, _ = lax.scan(step, state0, (jnp.swapaxes(x, 0, 1), eps))
        return loss_of_final(final[0])

    eps = jnp.zeros((x.shape[1], x.shape[0], state0[0].shape[-1]), x.dtype)
    return jax.grad(loss)(eps)
