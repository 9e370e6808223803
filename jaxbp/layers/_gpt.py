"""GPT's pieces: the pre-norm transformer block and the tied-embedding body.

A block (GPT-2, nanoGPT) on x (B, T, C), LN a layer norm, D a dropout::

    h = x + D(attn(LN_1(x)))                    (causal self-attention)
    y = h + D(mlp(LN_2(h)))                     mlp(u) = gelu_tanh(u W_fc + b_fc) W_proj + b_proj

``gpt_body`` wraps blocks between the embeddings and the head, with the
output head tied to the token embedding (Press & Wolf 2017; GPT-2)::

    x_0 = D(E[tokens] + P[:T])                  E = wte (V, C), P = wpe (block_size, C)
    x_L = blocks(x_0)
    logits = LN_f(x_L) Eᵀ                       (B, T, V), no bias

E is used twice, so its gradient is the sum of both uses (``gpt_body_backward``).
Params read as GPT-2's: ``wte``, ``wpe``, ``blocks/i/{ln_1, attn, ln_2, mlp}``,
``ln_f``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp import activations, initializers
from jaxbp.layers._attention import (
    GPT2_STD,
    attention_dropout_mask,
    attention_params,
    causal_self_attention_backward,
    causal_self_attention_forward,
    check_heads,
)
from jaxbp.layers._checkpointed import _opaque_true
from jaxbp.layers._dense import dense_backward, dense_forward
from jaxbp.layers._dropout import dropout as dropout_layer
from jaxbp.layers._dropout import dropout_backward, dropout_mask
from jaxbp.layers._embedding import embedding_backward, embedding_forward
from jaxbp.layers._layernorm import layernorm_backward, layernorm_forward
from jaxbp.layers._position import (
    check_length,
    check_positive,
    position_embedding_backward,
    position_embedding_forward,
)
from jaxbp.layers._protocol import Layer, check_in_shape
from jaxbp.layers._serial import serial, serial_backward, serial_forward, split_key

LN_EPS = 1e-5
GELU = activations.get("gelu_tanh")


def _dense(params, prefix):
    return {"w": params[f"w_{prefix}"], "b": params[f"b_{prefix}"]}


def mlp_forward(params, x):
    """out = gelu_tanh(x W_fc + b_fc) W_proj + b_proj; cache (x, z, g)."""
    z = dense_forward(_dense(params, "fc"), x)
    g = GELU.forward(z)
    return dense_forward(_dense(params, "proj"), g), (x, z, g)


def mlp_backward(params, cache, dy):
    """dW_proj = gᵀ dy, db_proj = Σ dy, dg = dy W_projᵀ; dz = dg ⊙ gelu_tanh'(z);
    dW_fc = xᵀ dz, db_fc = Σ dz, dx = dz W_fcᵀ (sums over batch and positions)."""
    x, z, g = cache
    d_proj, dg = dense_backward(_dense(params, "proj"), g, dy)
    dz = GELU.backward(z, g, dg)
    d_fc, dx = dense_backward(_dense(params, "fc"), x, dz)
    grads = {"w_fc": d_fc["w"], "b_fc": d_fc["b"]}
    return {**grads, "w_proj": d_proj["w"], "b_proj": d_proj["b"]}, dx


def gpt_block_forward(params, x, *, n_head, masks=(None, None, None)):
    """h = x + D(attn(LN_1 x)), y = h + D(mlp(LN_2 h)); ``masks`` (attention
    weights, attention output, MLP output), each None without dropout."""
    m_weights, m_attn, m_mlp = masks
    a, ln_1 = layernorm_forward(params["ln_1"], x, eps=LN_EPS)
    att, attn = causal_self_attention_forward(
        params["attn"], a, n_head=n_head, mask=m_weights
    )
    h = x + (att if m_attn is None else att * m_attn)
    b, ln_2 = layernorm_forward(params["ln_2"], h, eps=LN_EPS)
    f, mlp = mlp_forward(params["mlp"], b)
    y = h + (f if m_mlp is None else f * m_mlp)
    return y, (ln_1, attn, ln_2, mlp, masks)


def gpt_block_backward(params, cache, dy):
    """The chain rule through the block, output to input; each residual sum
    passes dy on unchanged and adds its branch's backward::

        dh = dy + LN_2ᵀ(mlpᵀ(dy ⊙ M_mlp))
        dx = dh + LN_1ᵀ(attnᵀ(dh ⊙ M_attn))

    (Xᵀ(·): that layer's backward; layer norm, MLP and attention as in their
    ``*_backward`` functions.)
    """
    ln_1, attn, ln_2, mlp, (_, m_attn, m_mlp) = cache
    g_mlp, d_b = mlp_backward(params["mlp"], mlp, dropout_backward(m_mlp, dy))
    g_ln_2, d_h = layernorm_backward(params["ln_2"], ln_2, d_b)
    dh = dy + d_h
    g_attn, d_a = causal_self_attention_backward(
        params["attn"], attn, dropout_backward(m_attn, dh)
    )
    g_ln_1, d_x = layernorm_backward(params["ln_1"], ln_1, d_a)
    grads = {"ln_1": g_ln_1, "attn": g_attn, "ln_2": g_ln_2, "mlp": g_mlp}
    return grads, dh + d_x


def _layernorm_params(width, dtype):
    return {"gamma": jnp.ones((width,), dtype), "beta": jnp.zeros((width,), dtype)}


def gpt_block_params(key, width, dtype, init, proj_init):
    """GPT-2's initialisation: weights from ``init``, the two residual output
    projections (``attn/w_proj``, ``mlp/w_proj``) from ``proj_init``, biases
    0, layer norms γ = 1, β = 0; the MLP 4x wide."""
    k_attn, k_fc, k_proj = jax.random.split(key, 3)
    mlp = {
        "w_fc": init(k_fc, (width, 4 * width), dtype),
        "b_fc": jnp.zeros((4 * width,), dtype),
        "w_proj": proj_init(k_proj, (4 * width, width), dtype),
        "b_proj": jnp.zeros((width,), dtype),
    }
    return {
        "ln_1": _layernorm_params(width, dtype),
        "attn": attention_params(k_attn, width, dtype, init, proj_init),
        "ln_2": _layernorm_params(width, dtype),
        "mlp": mlp,
    }


def block_masks(key, rate, x, n_head, train, name):
    """(attention weights, attention output, MLP output) dropout masks, or
    Nones in evaluation mode or at rate 0."""
    if not train or rate == 0:
        return None, None, None
    k_weights, k_attn, k_mlp = split_key(key, 3)
    weights = attention_dropout_mask(k_weights, rate, x, n_head, train, name)
    return (
        weights,
        dropout_mask(k_attn, rate, x.shape, x.dtype),
        dropout_mask(k_mlp, rate, x.shape, x.dtype),
    )


def recompute_then_backward(params, cache, dy, *, run):
    """Gradient checkpointing of one block (``L.checkpointed``'s recipe, see
    ``_checkpointed``): from the saved input and key, the forward pass again
    (``run``, the same masks), then ``gpt_block_backward``; inside a
    ``lax.cond`` XLA cannot fold, so that its CSE cannot merge the
    recomputation with the first forward pass and keep those caches alive."""
    x, key = cache

    def taken(operands):
        params, x, key, dy = operands
        return gpt_block_backward(params, run(params, x, key)[1], dy)

    def never_taken(operands):
        params, x, _, _ = operands
        return jax.tree.map(jnp.zeros_like, params), jnp.zeros_like(x)

    return lax.cond(_opaque_true(), taken, never_taken, (params, x, key, dy))


def gpt_block(
    n_head: int,
    *,
    dropout: float = 0.0,
    init=None,
    proj_init=None,
    remat: bool = False,
    name: str = "gpt_block",
) -> Layer:
    """A pre-norm transformer block (module docstring) on (time, width) inputs,
    ``n_head`` heads, an MLP 4x wide with the tanh GELU, dropout ``dropout``
    on the attention weights and on both residual branches in training mode.
    Weights from ``init`` (default N(0, 0.02²)), the residual projections from
    ``proj_init`` (default ``init``). ``remat=True``: gradient checkpointing,
    the cache is the block's input (and key) only and the backward pass
    recomputes the forward first (the same numbers, one more forward pass)."""
    check_heads(name, n_head)
    dropout_layer(dropout, name=f"{name} dropout")  # validates the rate
    init = initializers.get(init or initializers.normal(GPT2_STD))
    proj_init = initializers.get(proj_init or init)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 2, "(time, width)")
        check_heads(name, n_head, in_shape[1])
        dtype = dtype or jnp.float32
        return (
            tuple(in_shape),
            gpt_block_params(key, in_shape[1], dtype, init, proj_init),
            (),
        )

    def run(params, x, key, train):
        masks = block_masks(key, dropout, x, n_head, train, name)
        return gpt_block_forward(params, x, n_head=n_head, masks=masks)

    def forward(params, state, x, *, key=None, train=False):
        if not remat:
            y, cache = run(params, x, key, train)
            return y, cache, state
        # jax.checkpoint matters to jax.grad only (the autodiff path); the
        # cache keeps the key only when it draws masks (training mode)
        output = jax.checkpoint(lambda p, x, k: run(p, x, k, train)[0])
        return output(params, x, key), (x, key if train else None), state

    def backward(params, cache, dy):
        if not remat:
            return gpt_block_backward(params, cache, dy)
        replay = functools.partial(run, train=cache[1] is not None)
        return recompute_then_backward(params, cache, dy, run=replay)

    return Layer(name, init_fn, forward, backward)


def gpt_body_forward(
    params, state, tokens, *, blocks, key=None, train=False, dropout=0.0
):
    """logits = LN_f(blocks(D(E[tokens] + P[:T]))) Eᵀ, D dropping with
    probability ``dropout`` in training mode; returns (logits, cache,
    new_state), the blocks' states in ``state``."""
    k_embed, k_blocks = split_key(key, 2)
    x = position_embedding_forward(
        {"table": params["wpe"]}, embedding_forward({"table": params["wte"]}, tokens)
    )
    mask = None
    if train and dropout > 0:
        mask = dropout_mask(k_embed, dropout, x.shape, x.dtype)
        x = x * mask
    x, block_caches, new_state = serial_forward(
        params["blocks"], state, x, layers=blocks, key=k_blocks, train=train
    )
    h, ln_f = layernorm_forward(params["ln_f"], x, eps=LN_EPS)
    logits = h @ params["wte"].T
    return logits, (tokens, mask, block_caches, ln_f, h), new_state


def gpt_body_backward(params, cache, dlogits, *, blocks):
    """The chain rule from dlogits (B, T, V) to every parameter::

        dE_head = Σ_{b,t} dlogits_btᵀ h_bt        (V, C)   h = LN_f(x_L)
        dh = dlogits E
        dx_L = LN_fᵀ(dh);  dx_0 = blocksᵀ(dx_L);  de = dx_0 ⊙ M
        dP[t] = Σ_b de[b, t]                     (t < T; 0 beyond)
        dE_embed[v] = Σ_{b,t : tokens[b,t] = v} de[b, t]   (scatter-add)
        dE = dE_embed + dE_head                  (the tied table: both uses)

    Returns ``(grads, None)``: the tokens are integers (no dx).
    """
    tokens, mask, block_caches, ln_f, h = cache
    wte = params["wte"]
    vocab, width = wte.shape
    d_wte_head = dlogits.reshape(-1, vocab).T @ h.reshape(-1, width)
    g_ln_f, dx = layernorm_backward(params["ln_f"], ln_f, dlogits @ wte)
    g_blocks, dx = serial_backward(params["blocks"], block_caches, dx, layers=blocks)
    dx = dropout_backward(mask, dx)
    g_wpe, dx = position_embedding_backward({"table": params["wpe"]}, dx)
    g_wte, _ = embedding_backward({"table": wte}, tokens, dx)
    grads = {
        "wte": g_wte["table"] + d_wte_head,
        "wpe": g_wpe["table"],
        "blocks": g_blocks,
        "ln_f": g_ln_f,
    }
    return grads, None


def gpt_body(
    vocab_size: int,
    block_size: int,
    width: int,
    blocks,
    *,
    dropout: float = 0.0,
    init=None,
    name: str = "gpt",
) -> Layer:
    """Tokens (time,) with time ≤ ``block_size`` → logits (time, vocab_size):
    the token and position embeddings of ``width``, dropout ``dropout`` on
    their sum in training mode, the ``blocks`` (layers keeping (time, width)),
    a final layer norm and the head tied to the token embedding (module
    docstring). Params ``wte`` (vocab_size, width), ``wpe`` (block_size,
    width) from ``init`` (default N(0, 0.02²)), ``blocks`` (a tuple, one entry
    a block), ``ln_f``; state: the blocks' (a tuple)."""
    for arg, value in (
        ("vocab_size", vocab_size),
        ("block_size", block_size),
        ("width", width),
    ):
        check_positive(name, arg, value)
    blocks = tuple(blocks)
    inner = serial(*blocks, name=f"{name}.blocks")  # (checks the layers)
    dropout_layer(dropout, name=f"{name} dropout")  # validates the rate
    init = initializers.get(init or initializers.normal(GPT2_STD))

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 1, "(time,)")
        check_length(name, in_shape[0], block_size)
        dtype = dtype or jnp.float32
        k_wte, k_wpe, k_blocks = jax.random.split(key, 3)
        x_shape = (in_shape[0], width)
        shape, block_params, block_state = inner.init(k_blocks, x_shape, dtype)
        if tuple(shape) != x_shape:
            raise ValueError(
                f"{name} needs blocks that keep the shape (time, width) = "
                f"{x_shape}; they give {tuple(shape)}"
            )
        params = {
            "wte": init(k_wte, (vocab_size, width), dtype),
            "wpe": init(k_wpe, (block_size, width), dtype),
            "blocks": block_params,
            "ln_f": _layernorm_params(width, dtype),
        }
        return (in_shape[0], vocab_size), params, block_state

    def forward(params, state, tokens, *, key=None, train=False):
        if train and dropout > 0 and key is None:
            raise ValueError(
                f"{name} with dropout {dropout} needs a PRNG key in training mode "
                "(pass key=jax.random.key(...), or train=False to evaluate)"
            )
        run = {"blocks": blocks, "key": key, "train": train, "dropout": dropout}
        return gpt_body_forward(params, state, tokens, **run)

    def backward(params, cache, dy):
        return gpt_body_backward(params, cache, dy, blocks=blocks)

    return Layer(name, init_fn, forward, backward, takes_tokens=True)
