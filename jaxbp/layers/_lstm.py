"""The LSTM with torch.nn.LSTM's equations, gate order and parameter layout.

For t = 1 … T, with x_t (B, D), the previous state (h_{t−1}, c_{t−1}) (B, H)
and the gates stacked in the order (i, f, g, o) along the 4H axis::

    a_t = x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh          (B, 4H) = [a_i a_f a_g a_o]
    i_t = σ(a_i)   f_t = σ(a_f)   g_t = tanh(a_g)   o_t = σ(a_o)
    c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)

Params ``w_ih`` (4H, D), ``w_hh`` (4H, H), ``b_ih`` (4H,), ``b_hh`` (4H,) are
exactly torch's ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``: weights can be exchanged with ``torch.nn.LSTM`` (one layer,
``batch_first=True``) and checked against it.

Initial and final states: the layer (``lstm``) starts from h_0 = c_0 = 0 and
its output is h_t for every t or only h_T. For truncated backpropagation
through time with a state carried between chunks use the functions:
``lstm_forward(params, x, h0, c0)`` returns the final state (h_T, c_T), and
``lstm_backward(params, cache, dhs, dh_T, dc_T)`` returns (dh_0, dc_0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp.layers._protocol import Layer
from jaxbp.layers._recurrent import (
    check_hidden,
    check_sequence_shape,
    output_of,
    state_grads_of,
    torch_uniform_weights,
)


def lstm_forward(params, x, h0=None, c0=None):
    """Run the LSTM over x (B, T, D) from (h0, c0) (zeros when None).

    Returns ``(hs, (h_T, c_T), cache)``: every h_t as hs (T, B, H), the final
    state, and the cache ``lstm_backward`` needs.
    """
    w_hh = params["w_hh"]
    batch, hidden = x.shape[0], w_hh.shape[1]
    h0 = jnp.zeros((batch, hidden), x.dtype) if h0 is None else h0
    c0 = jnp.zeros((batch, hidden), x.dtype) if c0 is None else c0
    xw = jnp.einsum("btd,gd->tbg", x, params["w_ih"]) + params["b_ih"]

    def step(carry, xw_t):
        h, c = carry
        a = xw_t + h @ w_hh.T + params["b_hh"]
        a_i, a_f, a_g, a_o = jnp.split(a, 4, axis=-1)
        i, f, g, o = (
            jax.nn.sigmoid(a_i),
            jax.nn.sigmoid(a_f),
            jnp.tanh(a_g),
            jax.nn.sigmoid(a_o),
        )
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    (h_t, c_t), (hs, cs, gates) = lax.scan(step, (h0, c0), xw)
    return hs, (h_t, c_t), (x, h0, c0, hs, cs, gates)


def lstm_backward(params, cache, dhs, dh_last=None, dc_last=None):
    """Backpropagation through time, given dhs[t] = ∂L/∂h_t from the output
    (T, B, H) and optionally ∂L/∂h_T, ∂L/∂c_T from the final state.

    h_t reaches the loss directly and through step t+1; c_t through h_t and
    c_{t+1}. Running t = T … 1 with the carries (g_h, g_c), first
    (dh_last, dc_last) or zeros, and τ_t = tanh(c_t)::

        dh_t = dhs[t] + g_h                       (total ∂L/∂h_t)
        do_t = dh_t ⊙ τ_t
        dc_t = g_c + dh_t ⊙ o_t ⊙ (1 − τ_t²)      (total ∂L/∂c_t)
        di_t = dc_t ⊙ g_t    dg_t = dc_t ⊙ i_t    df_t = dc_t ⊙ c_{t−1}
        da_t = [di ⊙ i(1−i), df ⊙ f(1−f), dg ⊙ (1−g²), do ⊙ o(1−o)]   (B, 4H)
        g_h ← da_t W_hh       g_c ← dc_t ⊙ f_t    (what h_{t−1}, c_{t−1} receive)

    and then, every step sharing the weights (sums over t and the batch)::

        dW_ih = Σ_t da_tᵀ x_t     dW_hh = Σ_t da_tᵀ h_{t−1}
        db_ih = db_hh = Σ_t Σ_batch da_t          dx_t = da_t W_ih

    Returns ``(grads, dx, (dh_0, dc_0))``: dh_0, dc_0 are the final carries.
    """
    x, h0, c0, hs, cs, gates = cache
    w_hh = params["w_hh"]
    c_prev = jnp.concatenate([c0[None], cs[:-1]])
    h_prev = jnp.concatenate([h0[None], hs[:-1]])
    dh_last = jnp.zeros_like(h0) if dh_last is None else dh_last
    dc_last = jnp.zeros_like(c0) if dc_last is None else dc_last

    def step(carry, inputs):
        g_h, g_c = carry
        dh_out, c_t, c_before, gates_t = inputs
        i, f, g, o = jnp.split(gates_t, 4, axis=-1)
        dh = dh_out + g_h
        tau = jnp.tanh(c_t)
        dc = g_c + dh * o * (1 - tau * tau)
        da = jnp.concatenate(
            [
                dc * g * i * (1 - i),
                dc * c_before * f * (1 - f),
                dc * i * (1 - g * g),
                dh * tau * o * (1 - o),
            ],
            axis=-1,
        )
        return (da @ w_hh, dc * f), da

    (dh0, dc0), das = lax.scan(
        step, (dh_last, dc_last), (dhs, cs, c_prev, gates), reverse=True
    )
    db = jnp.sum(das, axis=(0, 1))
    grads = {
        "w_ih": jnp.einsum("tbg,btd->gd", das, x),
        "w_hh": jnp.einsum("tbg,tbh->gh", das, h_prev),
        "b_ih": db,
        "b_hh": db,
    }
    dx = jnp.einsum("tbg,gd->btd", das, params["w_ih"])
    return grads, dx, (dh0, dc0)


def lstm(hidden: int, return_sequences: bool = True, *, name: str = "lstm") -> Layer:
    """An LSTM with ``hidden`` units on (time, features) inputs, torch.nn.LSTM's
    equations (module docstring), starting from h_0 = c_0 = 0.

    Weights from U(−1/√H, 1/√H) as torch; biases 0 except the forget gate's,
    initialised to 1 through ``b_ih`` (``b_ih[H:2H] = 1``, ``b_hh`` = 0: only
    their sum enters a_f), so c_{t−1} is kept at the start of training.
    Output every h_t, (T, H) per example, or h_T, (H,), with
    ``return_sequences=False``.
    """
    check_hidden(name, hidden)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_sequence_shape(name, in_shape)
        dtype = dtype or jnp.float32
        w_ih, w_hh = torch_uniform_weights(key, hidden, 4, in_shape[1], dtype)
        params = {
            "w_ih": w_ih,
            "w_hh": w_hh,
            "b_ih": jnp.zeros((4 * hidden,), dtype).at[hidden : 2 * hidden].set(1),
            "b_hh": jnp.zeros((4 * hidden,), dtype),
        }
        out = (in_shape[0], hidden) if return_sequences else (hidden,)
        return out, params, ()

    def forward(params, state, x, *, key=None, train=False):
        hs, _, cache = lstm_forward(params, x)
        return output_of(hs, return_sequences), cache, state

    def backward(params, cache, dy):
        dhs = state_grads_of(dy, cache[0].shape[1], return_sequences)
        grads, dx, _ = lstm_backward(params, cache, dhs)
        return grads, dx

    return Layer(name, init_fn, forward, backward)
