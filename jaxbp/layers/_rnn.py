"""A vanilla (Elman) tanh RNN over sequences (batch, time, features).

::

    h_0 = 0
    h_t = tanh(z_t),   z_t = x_t W_x + h_{t−1} W_h + b      t = 1 … T

The output is the last state h_T, (B, H), or every state (B, T, H) with
``return_sequences=True``. The forward pass runs a ``lax.scan`` over time and
keeps every h_t for the backward pass: backpropagation through time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp import initializers
from jaxbp.layers._protocol import Layer, check_in_shape


def rnn_forward(params, x):
    """All states hs (T, B, H) of h_t = tanh(x_t W_x + h_{t−1} W_h + b), h_0 = 0."""
    w_h = params["w_h"]
    xw = jnp.einsum("btf,fh->tbh", x, params["w_x"]) + params["b"]  # every x_t W_x + b

    def step(h, xw_t):
        h = jnp.tanh(xw_t + h @ w_h)
        return h, h

    h0 = jnp.zeros((x.shape[0], w_h.shape[0]), x.dtype)
    _, hs = lax.scan(step, h0, xw)
    return hs


def rnn_backward(params, cache, dhs):
    """Backpropagation through time, given the forward pass's ``cache = (x, hs)``
    (inputs (B, T, F), states (T, B, H)) and dhs[t] = ∂L/∂h_t from the output
    (only dh_T ≠ 0 when just h_T is returned).

    h_t enters the loss directly and through h_{t+1}, so, running t = T … 1
    with the carry g_T = 0::

        dh_t = dhs[t] + g_t                  (total dL/dh_t)
        dz_t = dh_t ⊙ (1 − h_t²)             (tanh' = 1 − tanh²)
        g_{t−1} = dz_t W_hᵀ                  (what h_{t−1} receives through z_t)

    and then, every z_t sharing the same weights (sums over t and the batch)::

        dW_x = Σ_t x_tᵀ dz_t     dW_h = Σ_t h_{t−1}ᵀ dz_t     db = Σ_t Σ_batch dz_t
        dx_t = dz_t W_xᵀ
    """
    x, hs = cache
    w_h = params["w_h"]

    def step(g, inputs):
        h_t, dh_out = inputs
        dz = (dh_out + g) * (1 - h_t * h_t)
        return dz @ w_h.T, dz

    g0 = jnp.zeros_like(hs[0])
    _, dzs = lax.scan(step, g0, (hs, dhs), reverse=True)  # (T, B, H)
    h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]])
    grads = {
        "w_x": jnp.einsum("btf,tbh->fh", x, dzs),
        "w_h": jnp.einsum("tbi,tbj->ij", h_prev, dzs),
        "b": jnp.sum(dzs, axis=(0, 1)),
    }
    dx = jnp.einsum("tbh,fh->btf", dzs, params["w_x"])
    return grads, dx


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
    if not (isinstance(hidden, int) and not isinstance(hidden, bool) and hidden > 0):
        raise ValueError(
            f"{name} hidden size must be a positive integer; got {hidden!r}"
        )
    weight_init = initializers.get(init)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 2, "(time, features)")
        if in_shape[0] < 1:
            raise ValueError(f"{name} needs at least one time step; got {in_shape}")
        k_x, k_h = jax.random.split(key)
        params = {
            "w_x": weight_init(k_x, (in_shape[1], hidden), dtype),
            "w_h": weight_init(k_h, (hidden, hidden), dtype),
            "b": jnp.zeros((hidden,), dtype),
        }
        out = (in_shape[0], hidden) if return_sequences else (hidden,)
        return out, params, ()

    def forward(params, state, x, *, key=None, train=False):
        hs = rnn_forward(params, x)
        y = jnp.swapaxes(hs, 0, 1) if return_sequences else hs[-1]
        return y, (x, hs), state

    def backward(params, cache, dy):
        _, hs = cache
        if return_sequences:
            dhs = jnp.swapaxes(dy, 0, 1)
        else:
            dhs = jnp.zeros_like(hs).at[-1].set(dy)
        return rnn_backward(params, cache, dhs)

    return Layer(name, init_fn, forward, backward)
