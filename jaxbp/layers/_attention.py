"""Causal multi-head self-attention (Vaswani et al. 2017), GPT-2's layout.

On x (B, T, C) with H heads of width d = C/H (per batch b and head h the
matrices below are (T, d) or (T, T); t indexes queries, s keys)::

    [Q K V] = x W_qkv + b_qkv            W_qkv (C, 3C), b_qkv (3C,)  (GPT-2's c_attn)
    S = Q Kᵀ / √d                         scores, per head
    S_ts = −∞ for s > t                   the causal mask: t sees only s ≤ t
    P = softmax(S) row by row             P_ts = exp(S_ts) / Σ_s' exp(S_ts')
    A = P ⊙ M                             dropout on the weights (M = 1 in evaluation)
    Y = A V                               (T, d) per head; heads side by side: (T, C)
    out = Y W_proj + b_proj               W_proj (C, C), b_proj (C,)  (GPT-2's c_proj)

Masked weights are exactly 0 (exp(−∞) = 0), so nothing at a later position s
reaches an earlier output t, and the backward pass sends nothing back there
either (``attention_backward``). The scores are computed for every (t, s) and
masked (as llm.c's naive kernel and nanoGPT do), not skipped.

``attention_backward`` (all heads at once, the softmax's Jacobian applied in
closed form) sits beside ``attention_backward_textbook`` (head by head, each
row's Jacobian diag(p) − p pᵀ built and multiplied), tested equal.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxbp import initializers
from jaxbp.checks import is_int
from jaxbp.layers._dense import dense_backward, dense_forward
from jaxbp.layers._dropout import dropout as dropout_layer
from jaxbp.layers._dropout import dropout_mask
from jaxbp.layers._protocol import Layer, check_in_shape

GPT2_STD = 0.02


def causal_mask(steps: int):
    """(T, T) bools: True where query t may look at key s (s ≤ t)."""
    return jnp.tril(jnp.ones((steps, steps), bool))


def split_heads(a, n_head: int):
    """(B, T, C) → (B, T, H, d): head h is the columns h·d … (h+1)·d − 1."""
    return a.reshape(*a.shape[:-1], n_head, a.shape[-1] // n_head)


def merge_heads(a):
    """(B, T, H, d) → (B, T, C): the heads side by side."""
    return a.reshape(*a.shape[:-2], a.shape[-2] * a.shape[-1])


def attention_forward(q, k, v, *, mask=None):
    """Y = (P ⊙ M) V with P = softmax(Q Kᵀ/√d, causal), per head.

    q, k, v: (B, T, H, d); ``mask`` M (B, H, T, T) or None (no dropout).
    Returns ``(y (B, T, H, d), cache)``, cache ``(q, k, v, P, M)``.
    """
    scale = 1 / math.sqrt(q.shape[-1])
    scores = jnp.einsum("bthd,bshd->bhts", q, k) * scale
    scores = jnp.where(causal_mask(q.shape[1]), scores, -jnp.inf)
    # softmax is shift invariant: the row maximum is a constant to jax.grad
    shifted = scores - jax.lax.stop_gradient(jnp.max(scores, -1, keepdims=True))
    e = jnp.exp(shifted)
    p = e / jnp.sum(e, axis=-1, keepdims=True)
    weights = p if mask is None else p * mask
    y = jnp.einsum("bhts,bshd->bthd", weights, v)
    return y, (q, k, v, p, mask)


def attention_backward(cache, dy):
    """The chain rule through Y = A V, A = P ⊙ M, P = softmax(S), S = Q Kᵀ/√d,
    given dY (B, T, H, d); per head (sums over the batch are separate)::

        dA = dY Vᵀ                 dV = Aᵀ dY
        dP = dA ⊙ M
        dS_ts = P_ts (dP_ts − Σ_s' dP_ts' P_ts')      (softmax, row t)
        dQ = dS K / √d             dK = dSᵀ Q / √d

    The masked P_ts are 0, so dS_ts = 0 for s > t: no gradient from a later
    position to an earlier one. Returns ``(dq, dk, dv)``, each (B, T, H, d).
    """
    q, k, v, p, mask = cache
    scale = 1 / math.sqrt(q.shape[-1])
    weights = p if mask is None else p * mask
    d_weights = jnp.einsum("bthd,bshd->bhts", dy, v)
    dv = jnp.einsum("bhts,bthd->bshd", weights, dy)
    dp = d_weights if mask is None else d_weights * mask
    ds = p * (dp - jnp.sum(dp * p, axis=-1, keepdims=True))
    dq = jnp.einsum("bhts,bshd->bthd", ds, k) * scale
    dk = jnp.einsum("bhts,bthd->bshd", ds, q) * scale
    return dq, dk, dv


def attention_backward_textbook(cache, dy):
    """``attention_backward`` head by head, with the softmax's Jacobian as a
    matrix: for row t, J_t = diag(p_t) − p_t p_tᵀ (∂p_ts/∂S_ts' = p_ts (δ_ss' −
    p_ts')) and dS_t = J_t dP_t; the matrix products as in the formulas."""
    q, k, v, p, mask = cache
    scale = 1 / math.sqrt(q.shape[-1])
    dqs, dks, dvs = [], [], []
    for h in range(q.shape[2]):
        q_h, k_h, v_h, dy_h = q[:, :, h], k[:, :, h], v[:, :, h], dy[:, :, h]
        p_h = p[:, h]
        m_h = jnp.ones_like(p_h) if mask is None else mask[:, h]
        a_h = p_h * m_h
        dp_h = (dy_h @ jnp.swapaxes(v_h, -1, -2)) * m_h  # dA ⊙ M
        dvs.append(jnp.swapaxes(a_h, -1, -2) @ dy_h)
        diag = p_h[..., None] * jnp.eye(p_h.shape[-1], dtype=p_h.dtype)
        jacobian = diag - p_h[..., :, None] * p_h[..., None, :]  # (B, T, T, T)
        ds_h = jnp.einsum("btsr,btr->bts", jacobian, dp_h)
        dqs.append(ds_h @ k_h * scale)
        dks.append(jnp.swapaxes(ds_h, -1, -2) @ q_h * scale)
    return tuple(jnp.stack(g, axis=2) for g in (dqs, dks, dvs))


def causal_self_attention_forward(params, x, *, n_head, mask=None):
    """out = merge(attention(split(x W_qkv + b_qkv))) W_proj + b_proj on x
    (B, T, C); ``mask`` the dropout mask on the weights (B, H, T, T) or None.
    Returns ``(out, cache)``."""
    qkv = dense_forward({"w": params["w_qkv"], "b": params["b_qkv"]}, x)
    q, k, v = (split_heads(a, n_head) for a in jnp.split(qkv, 3, axis=-1))
    y, core = attention_forward(q, k, v, mask=mask)
    merged = merge_heads(y)
    out = dense_forward({"w": params["w_proj"], "b": params["b_proj"]}, merged)
    return out, (x, merged, core)


def causal_self_attention_backward(params, cache, dy, *, textbook=False):
    """Backward through the output projection (a dense layer: dW_proj = Yᵀ dy,
    db_proj = Σ dy, dY = dy W_projᵀ), the heads (``attention_backward``), and
    the QKV projection (dW_qkv = xᵀ [dQ dK dV], db_qkv = Σ [dQ dK dV],
    dx = [dQ dK dV] W_qkvᵀ). Sums over the batch and the positions."""
    x, merged, core = cache
    proj = {"w": params["w_proj"], "b": params["b_proj"]}
    d_proj, d_merged = dense_backward(proj, merged, dy)
    n_head = core[0].shape[2]
    backward = attention_backward_textbook if textbook else attention_backward
    dq, dk, dv = backward(core, split_heads(d_merged, n_head))
    d_qkv = jnp.concatenate([merge_heads(g) for g in (dq, dk, dv)], axis=-1)
    qkv = {"w": params["w_qkv"], "b": params["b_qkv"]}
    d_in, dx = dense_backward(qkv, x, d_qkv)
    grads = {
        "w_qkv": d_in["w"],
        "b_qkv": d_in["b"],
        "w_proj": d_proj["w"],
        "b_proj": d_proj["b"],
    }
    return grads, dx


def attention_params(key, width, dtype, init, proj_init):
    """{w_qkv (C, 3C), b_qkv (3C,), w_proj (C, C), b_proj (C,)}, biases 0."""
    k_qkv, k_proj = jax.random.split(key)
    return {
        "w_qkv": init(k_qkv, (width, 3 * width), dtype),
        "b_qkv": jnp.zeros((3 * width,), dtype),
        "w_proj": proj_init(k_proj, (width, width), dtype),
        "b_proj": jnp.zeros((width,), dtype),
    }


def check_heads(name, n_head, width=None) -> None:
    """Raise unless ``n_head`` is a positive integer dividing ``width``."""
    if not (is_int(n_head) and n_head > 0):
        raise ValueError(f"{name} n_head must be a positive integer; got {n_head!r}")
    if width is not None and width % n_head:
        raise ValueError(
            f"{name} needs a width divisible by n_head; got width {width} and "
            f"n_head {n_head}"
        )


def causal_self_attention(
    n_head: int,
    dropout: float = 0.0,
    *,
    init=None,
    proj_init=None,
    textbook: bool = False,
    name: str = "causal_self_attention",
) -> Layer:
    """Causal self-attention with ``n_head`` heads on (time, width) inputs
    (module docstring), dropout with probability ``dropout`` on the
    attention weights in training mode (a PRNG ``key`` then; evaluation mode
    is deterministic).

    Params ``w_qkv`` (C, 3C), ``b_qkv``, ``w_proj`` (C, C), ``b_proj``; weights
    from ``init`` (default GPT-2's N(0, 0.02²)), ``w_proj`` from ``proj_init``
    (default ``init``; GPT-2 scales it by 1/√(2·layers), ``jaxbp.model.gpt``),
    biases 0. ``textbook=True`` runs ``attention_backward_textbook``.
    """
    check_heads(name, n_head)
    dropout_layer(dropout, name=f"{name} dropout")  # validates the rate
    init = initializers.get(init or initializers.normal(GPT2_STD))
    proj_init = initializers.get(proj_init or init)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 2, "(time, width)")
        check_heads(name, n_head, in_shape[1])
        params = attention_params(
            key, in_shape[1], dtype or jnp.float32, init, proj_init
        )
        return tuple(in_shape), params, ()

    def forward(params, state, x, *, key=None, train=False):
        mask = attention_dropout_mask(key, dropout, x, n_head, train, name)
        y, cache = causal_self_attention_forward(params, x, n_head=n_head, mask=mask)
        return y, cache, state

    def backward(params, cache, dy):
        return causal_self_attention_backward(params, cache, dy, textbook=textbook)

    return Layer(name, init_fn, forward, backward)


def attention_dropout_mask(key, rate, x, n_head, train, name):
    """The dropout mask M (B, H, T, T) on the attention weights, or None in
    evaluation mode or at rate 0; a ValueError when training needs a key."""
    if not train or rate == 0:
        return None
    if key is None:
        raise ValueError(
            f"{name} with dropout {rate} needs a PRNG key in training mode "
            "(pass key=jax.random.key(...), or train=False to evaluate)"
        )
    batch, steps = x.shape[0], x.shape[1]
    return dropout_mask(key, rate, (batch, n_head, steps, steps), x.dtype)
