"""A learned position embedding: ``y[b, t] = x[b, t] + P[t]`` (GPT-2's ``wpe``)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxbp import initializers
from jaxbp.checks import is_int
from jaxbp.layers._protocol import Layer, check_in_shape

GPT2_STD = 0.02


def position_embedding_forward(params, x):
    """y = x + P[:T]   (x: (B, T, C), P: (max_len, C), T ≤ max_len)"""
    return x + params["table"][: x.shape[-2]]


def position_embedding_backward(params, dy):
    """Chain rule through y[b, t] = x[b, t] + P[t], given dy (B, T, C)::

        dP[t] = Σ_b dy[b, t]   for t < T;   dP[t] = 0 for T ≤ t < max_len
        dx = dy

    Row t of dP is exactly the gradient with respect to the inputs at
    position t, summed over the batch.
    """
    table = params["table"]
    rows = jnp.sum(dy.reshape(-1, *dy.shape[-2:]), axis=0).astype(table.dtype)
    return {"table": jnp.zeros_like(table).at[: dy.shape[-2]].set(rows)}, dy


def check_positive(name: str, arg: str, value) -> None:
    if not (is_int(value) and value > 0):
        raise ValueError(f"{name} {arg} must be a positive integer; got {value!r}")


def check_length(name: str, steps: int, max_len: int) -> None:
    """Raise unless the sequence length fits the table of positions."""
    if steps > max_len:
        raise ValueError(
            f"{name} holds {max_len} positions; got sequences of length {steps}"
        )


def position_embedding(
    max_len: int, *, init=None, name: str = "position_embedding"
) -> Layer:
    """Adds a learned vector per position to (time, width) inputs of length
    T ≤ ``max_len``. Params ``table`` (max_len, width) from ``init`` (default
    GPT-2's N(0, 0.02²)); rows past T get a zero gradient."""
    check_positive(name, "max_len", max_len)
    init = initializers.get(init or initializers.normal(GPT2_STD))

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 2, "(time, width)")
        check_length(name, in_shape[0], max_len)
        table = init(key, (max_len, in_shape[1]), dtype or jnp.float32)
        return tuple(in_shape), {"table": table}, ()

    def forward(params, state, x, *, key=None, train=False):
        return position_embedding_forward(params, x), None, state

    def backward(params, cache, dy):
        return position_embedding_backward(params, dy)

    return Layer(name, init_fn, forward, backward)
