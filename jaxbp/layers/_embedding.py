"""The embedding layer: integer tokens to rows of a table, ``y[b, t] = E[tokens[b, t]]``."""

from __future__ import annotations

import jax.numpy as jnp

from jaxbp import draws
from jaxbp.layers._protocol import Layer, check_in_shape


def embedding_forward(params, tokens):
    """y = E[tokens]   (tokens: (B, T) integers, E: (vocab_size, dim), y: (B, T, dim))"""
    return params["table"][tokens]


def embedding_backward(params, tokens, dy):
    """Chain rule through y[b, t] = E[tokens[b, t]], given dy (B, T, dim)::

        dE[v] = Σ_{b,t : tokens[b,t] = v} dy[b, t]     (scatter-add: repeats accumulate)
        dtokens: none (the input is integer)

    Returns ``({"table": dE}, None)``: ``None`` stands for the missing
    gradient of an integer input, so the embedding must be a model's first
    layer (``serial_backward`` hands it on as the model's dx).
    """
    table = params["table"]
    d_table = jnp.zeros_like(table).at[tokens].add(dy.astype(table.dtype))
    return {"table": d_table}, None


def embedding(vocab_size: int, dim: int, *, name: str = "embedding") -> Layer:
    """Vectors of size ``dim`` for integer tokens in ``[0, vocab_size)``.

    Params ``table`` (vocab_size, dim) drawn from N(0, 1), as ``torch.nn.Embedding``
    does: each row is looked up, not summed over inputs, so unit variance
    feeds the next layer unit-scale inputs. Per-example input shape (T,),
    output (T, dim). Tokens outside the range are not checked under ``jit``
    (JAX clamps gathers), so keep them in range.
    """
    for arg, value in (("vocab_size", vocab_size), ("dim", dim)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ValueError(f"{name} {arg} must be a positive integer; got {value!r}")

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 1, "(time,)")
        table = draws.normal(key, (vocab_size, dim), dtype or jnp.float32)
        return (in_shape[0], dim), {"table": table}, ()

    def forward(params, state, tokens, *, key=None, train=False):
        return embedding_forward(params, tokens), tokens, state

    def backward(params, tokens, dy):
        return embedding_backward(params, tokens, dy)

    return Layer(name, init_fn, forward, backward, takes_tokens=True)
