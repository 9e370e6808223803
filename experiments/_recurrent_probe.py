"""Recurrent pieces the sequence experiments share, on jaxbp's functional layers.

- ``rnn_forward_from`` / ``rnn_backward_from``: the tanh RNN started from a
  state h0 rather than 0 (for truncated BPTT with the state carried between
  chunks). ``jaxbp.layers.rnn_forward`` has no ``h0`` argument (``lstm_forward``
  and ``gru_forward`` have one), so h0 enters as extra input features at the
  first step, exactly: with x'_t = [x_t, h0·[t = 1]] and W_x' = [W_x; W_h],
  ``x'_1 W_x' = x_1 W_x + h0 W_h``, which is z_1 with h_0 = h0. The backward
  maps back: dW_x is dW_x'[:F], the missing first-step term h0ᵀ dz_1 of dW_h
  is dW_x'[F:], and dL/dh0 = dz_1 W_hᵀ is dx'_1[F:].
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


def rnn_forward_from(params, x, h0):
    """``rnn_forward`` from h0: (hs (T, B, H), cache) (module docstring)."""
    x_aug = jnp.concatenate(
        [x, jnp.zeros((*x.shape[:2], h0.shape[-1]), x.dtype).at[:, 0].set(h0)], -1
    )
    hs = rnn_forward(_augmented(params), x_aug)
    return hs, (x_aug, hs)


def rnn_backward_from(params, cache, dhs):
    """``rnn_backward`` for ``rnn_forward_from``: (grads, dx, dh0)."""
    n_in = params["w_x"].shape[0]
    grads, dx_aug = rnn_backward(_augmented(params), cache, dhs)
    grads = {
        "w_x": grads["w_x"][:n_in],
        "w_h": grads["w_h"] + grads["w_x"][n_in:],
        "b": grads["b"],
    }
    return grads, dx_aug[..., :n_in], dx_aug[:, 0, n_in:]


def _augmented(params):
    w_x = jnp.concatenate([params["w_x"], params["w_h"]], axis=0)
    return {"w_x": w_x, "w_h": params["w_h"], "b": params["b"]}


def zero_state(kind: str, batch: int, hidden: int, dtype=jnp.float32):
    """The initial recurrent state: (h,) or (h, c) for the LSTM, zeros."""
    h = jnp.zeros((batch, hidden), dtype)
    return (h, h) if kind == "lstm" else (h,)


def sequence_forward(kind, params, x, state):
    """Every h_t (T, B, H), the final state tuple and the cache, from ``state``."""
    if kind == "rnn":
        hs, cache = rnn_forward_from(params, x, state[0])
        return hs, (hs[-1],), cache
    if kind == "lstm":
        hs, final, cache = lstm_forward(params, x, *state)
        return hs, final, cache
    hs, h_last, cache = gru_forward(params, x, state[0])
    return hs, (h_last,), cache


def sequence_backward(kind, params, cache, dhs, dstate):
    """(grads, dx, dstate_0) given dhs (T, B, H) and ∂L/∂(final state)."""
    if kind == "rnn":
        dhs = dhs.at[-1].add(dstate[0])
        grads, dx, dh0 = rnn_backward_from(params, cache, dhs)
        return grads, dx, (dh0,)
    if kind == "lstm":
        return lstm_backward(params, cache, dhs, *dstate)
    grads, dx, dh0 = gru_backward(params, cache, dhs, dstate[0])
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
