"""The GRU with torch.nn.GRU's equations, gate order and parameter layout.

For t = 1 … T, with x_t (B, D), h_{t−1} (B, H) and the gates stacked in the
order (r, z, n) along the 3H axis::

    u_t = x_t W_ihᵀ + b_ih = [u_r u_z u_n]       v_t = h_{t−1} W_hhᵀ + b_hh = [v_r v_z v_n]
    r_t = σ(u_r + v_r)      z_t = σ(u_z + v_z)
    n_t = tanh(u_n + r_t ⊙ v_n)                   (the reset gate on W_hn h + b_hn)
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}

Params ``w_ih`` (3H, D), ``w_hh`` (3H, H), ``b_ih`` (3H,), ``b_hh`` (3H,) are
exactly torch's ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
``bias_hh_l0``: weights can be exchanged with ``torch.nn.GRU`` (one layer,
``batch_first=True``) and checked against it. b_hn is not redundant with
b_in: it sits inside the reset gate.

Initial and final states as for the LSTM: the layer starts from h_0 = 0;
``gru_forward(params, x, h0)`` returns h_T and ``gru_backward(params, cache,
dhs, dh_T)`` returns dh_0, for truncated backpropagation through time.
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


def gru_forward(params, x, h0=None):
    """Run the GRU over x (B, T, D) from h0 (zeros when None).

    Returns ``(hs, h_T, cache)``: every h_t as hs (T, B, H), the final state
    and the cache ``gru_backward`` needs.
    """
    w_hh = params["w_hh"]
    batch, hidden = x.shape[0], w_hh.shape[1]
    h0 = jnp.zeros((batch, hidden), x.dtype) if h0 is None else h0
    us = jnp.einsum("btd,gd->tbg", x, params["w_ih"]) + params["b_ih"]

    def step(h, u):
        v = h @ w_hh.T + params["b_hh"]
        u_r, u_z, u_n = jnp.split(u, 3, axis=-1)
        v_r, v_z, v_n = jnp.split(v, 3, axis=-1)
        r = jax.nn.sigmoid(u_r + v_r)
        z = jax.nn.sigmoid(u_z + v_z)
        n = jnp.tanh(u_n + r * v_n)
        h = (1 - z) * n + z * h
        return h, (h, jnp.concatenate([r, z, n, v_n], axis=-1))

    h_t, (hs, gates) = lax.scan(step, h0, us)
    return hs, h_t, (x, h0, hs, gates)


def gru_backward(params, cache, dhs, dh_last=None):
    """Backpropagation through time, given dhs[t] = ∂L/∂h_t from the output
    (T, B, H) and optionally ∂L/∂h_T from the final state.

    Running t = T … 1 with the carry g, first dh_last or zeros::

        dh_t = dhs[t] + g                          (total ∂L/∂h_t)
        dn = dh_t ⊙ (1 − z)     dz = dh_t ⊙ (h_{t−1} − n)
        dp = dn ⊙ (1 − n²)                          (p = u_n + r ⊙ v_n)
        dr = dp ⊙ v_n
        du = [dr ⊙ r(1−r), dz ⊙ z(1−z), dp]         (B, 3H)
        dv = [dr ⊙ r(1−r), dz ⊙ z(1−z), dp ⊙ r]     (B, 3H)
        g ← dh_t ⊙ z + dv W_hh                      (what h_{t−1} receives)

    and then, summed over t and the batch::

        dW_ih = Σ_t du_tᵀ x_t     dW_hh = Σ_t dv_tᵀ h_{t−1}
        db_ih = Σ du_t            db_hh = Σ dv_t          dx_t = du_t W_ih

    Returns ``(grads, dx, dh_0)``: dh_0 is the final carry.
    """
    x, h0, hs, gates = cache
    w_hh = params["w_hh"]
    h_prev = jnp.concatenate([h0[None], hs[:-1]])
    dh_last = jnp.zeros_like(h0) if dh_last is None else dh_last

    def step(g, inputs):
        dh_out, h_before, gates_t = inputs
        r, z, n, v_n = jnp.split(gates_t, 4, axis=-1)
        dh = dh_out + g
        dp = dh * (1 - z) * (1 - n * n)
        da_r = dp * v_n * r * (1 - r)
        da_z = dh * (h_before - n) * z * (1 - z)
        du = jnp.concatenate([da_r, da_z, dp], axis=-1)
        dv = jnp.concatenate([da_r, da_z, dp * r], axis=-1)
        return dh * z + dv @ w_hh, (du, dv)

    dh0, (dus, dvs) = lax.scan(step, dh_last, (dhs, h_prev, gates), reverse=True)
    grads = {
        "w_ih": jnp.einsum("tbg,btd->gd", dus, x),
        "w_hh": jnp.einsum("tbg,tbh->gh", dvs, h_prev),
        "b_ih": jnp.sum(dus, axis=(0, 1)),
        "b_hh": jnp.sum(dvs, axis=(0, 1)),
    }
    dx = jnp.einsum("tbg,gd->btd", dus, params["w_ih"])
    return grads, dx, dh0


def gru(hidden: int, return_sequences: bool = True, *, name: str = "gru") -> Layer:
    """A GRU with ``hidden`` units on (time, features) inputs, torch.nn.GRU's
    equations (module docstring), starting from h_0 = 0.

    Weights from U(−1/√H, 1/√H) as torch; biases 0. Output every h_t, (T, H)
    per example, or h_T, (H,), with ``return_sequences=False``.
    """
    check_hidden(name, hidden)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_sequence_shape(name, in_shape)
        dtype = dtype or jnp.float32
        w_ih, w_hh = torch_uniform_weights(key, hidden, 3, in_shape[1], dtype)
        params = {
            "w_ih": w_ih,
            "w_hh": w_hh,
            "b_ih": jnp.zeros((3 * hidden,), dtype),
            "b_hh": jnp.zeros((3 * hidden,), dtype),
        }
        out = (in_shape[0], hidden) if return_sequences else (hidden,)
        return out, params, ()

    def forward(params, state, x, *, key=None, train=False):
        hs, _, cache = gru_forward(params, x)
        return output_of(hs, return_sequences), cache, state

    def backward(params, cache, dy):
        dhs = state_grads_of(dy, cache[0].shape[1], return_sequences)
        grads, dx, _ = gru_backward(params, cache, dhs)
        return grads, dx

    return Layer(name, init_fn, forward, backward)
