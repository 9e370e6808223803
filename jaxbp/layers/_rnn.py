"""A vanilla (Elman) tanh RNN over sequences (batch, time, features).

::

    h_t = tanh(z_t),   z_t = x_t W_x + h_{t−1} W_h + b      t = 1 … T

from h_0 = 0 in the layer (or a given h0). The output is the last state h_T,
(B, H), or every state (B, T, H) with ``return_sequences=True``. The forward
pass runs a ``lax.scan`` over time and keeps every h_t for the backward pass:
backpropagation through time.

Initial and final states as for the LSTM and the GRU: ``rnn_forward(params,
x, h0)`` returns h_T and ``rnn_backward(params, cache, dhs, dh_T)`` returns
dh_0, for truncated backpropagation through time (the state carried from one
chunk of a sequence to the next).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp import initializers
from jaxbp.layers._protocol import Layer
from jaxbp.layers._recurrent import (
    check_hidden,
    check_sequence_shape,
    output_of,
    state_grads_of,
)


def rnn_forward(params, x, h0=None):
    """Run h_t = tanh(x_t W_x + h_{t−1} W_h + b) over x (B, T, F) from h0
    (zeros when None).

    Returns ``(hs, h_T, cache)``: every h_t as hs (T, B, H), the final state
    and the cache ``rnn_backward`` needs.
    """
    w_h = params["w_h"]
    h0 = jnp.zeros((x.shape[0], w_h.shape[0]), x.dtype) if h0 is None else h0
    xw = jnp.einsum("btf,fh->tbh", x, params["w_x"]) + params["b"]  # every x_t W_x + b

    def step(h, xw_t):
        h = jnp.tanh(xw_t + h @ w_h)
        return h, h

    h_t, hs = lax.scan(step, h0, xw)
    return hs, h_t, (x, h0, hs)


def rnn_backward(params, cache, dhs, dh_last=None):
    """Backpropagation through time, given the forward pass's ``cache`` and
    dhs[t] = ∂L/∂h_t from the output (T, B, H) (only dh_T ≠ 0 when just h_T is
    returned), and optionally ∂L/∂h_T from the final state.

    h_t enters the loss directly and through h_{t+1}, so, running t = T … 1
    with the carry g_T = dh_last (or 0)::

        dh_t = dhs[t] + g_t                  (total ∂L/∂h_t)
        dz_t = dh_t ⊙ (1 − h_t²)             (tanh' = 1 − tanh²)
        g_{t−1} = dz_t W_hᵀ                  (what h_{t−1} receives through z_t)

    and then, every z_t sharing the same weights (sums over t and the batch)::

        dW_x = Σ_t x_tᵀ dz_t     dW_h = Σ_t h_{t−1}ᵀ dz_t     db = Σ_t Σ_batch dz_t
        dx_t = dz_t W_xᵀ         dh_0 = g_0

    Returns ``(grads, dx, dh_0)``.
    """
    x, h0, hs = cache
    w_h = params["w_h"]

    def step(g, inputs):
        h_t, dh_out = inputs
        dz = (dh_out + g) * (1 - h_t * h_t)
        return dz @ w_h.T, dz

    g_last = jnp.zeros_like(h0) if dh_last is None else dh_last
    dh0, dzs = lax.scan(step, g_last, (hs, dhs), reverse=True)  # dzs (T, B, H)
    h_prev = jnp.concatenate([h0[None], hs[:-1]])
    grads = {
        "w_x": jnp.einsum("btf,tbh->fh", x, dzs),
        "w_h": jnp.einsum("tbi,tbj->ij", h_prev, dzs),
        "b": jnp.sum(dzs, axis=(0, 1)),
    }
    dx = jnp.einsum("tbh,fh->btf", dzs, params["w_x"])
    return grads, dx, dh0


def rnn(
    hidden: int,
    return_sequences: bool = False,
    init="xavier",
    *,
    name: str = "rnn",
) -> Layer:
    """A tanh RNN with ``hidden`` units on (time, features) inputs.

    Params ``w_x`` (F, H), ``w_h`` (H, H) drawn from ``init`` and ``b`` (H,) = 0.
    Output h_T, (H,) per example, or all states (T, H) if ``return_sequences``.
    """
    check_hidden(name, hidden)
    weight_init = initializers.get(init)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_sequence_shape(name, in_shape)
        k_x, k_h = jax.random.split(key)
        params = {
            "w_x": weight_init(k_x, (in_shape[1], hidden), dtype),
            "w_h": weight_init(k_h, (hidden, hidden), dtype),
            "b": jnp.zeros((hidden,), dtype),
        }
        out = (in_shape[0], hidden) if return_sequences else (hidden,)
        return out, params, ()

    def forward(params, state, x, *, key=None, train=False):
        hs, _, cache = rnn_forward(params, x)
        return output_of(hs, return_sequences), cache, state

    def backward(params, cache, dy):
        dhs = state_grads_of(dy, cache[0].shape[1], return_sequences)
        grads, dx, _ = rnn_backward(params, cache, dhs)
        return grads, dx

    return Layer(name, init_fn, forward, backward)
