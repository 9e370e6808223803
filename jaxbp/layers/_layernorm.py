"""Layer normalization (Ba, Kiros & Hinton 2016) over the last axis.

Each example (each position, for images or sequences) is normalized over its
D features (the last axis) with its own statistics, in training and evaluation
alike::

    μ = (1/D) Σ_j x_j      σ² = (1/D) Σ_j (x_j − μ)²      σ = sqrt(σ² + eps)
    x̂ = (x − μ) / σ       y = γ x̂ + β
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxbp.checks import is_number
from jaxbp.layers._protocol import Layer


def layernorm_forward(params, x, *, eps):
    """(y, (x̂, 1/σ)): y = γ x̂ + β with each row's own mean and variance."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    inv_std = 1 / jnp.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    return params["gamma"] * xhat + params["beta"], (xhat, inv_std)


def layernorm_backward(params, cache, dy):
    """The chain rule through y = γ x̂ + β, x̂ = (x − μ)/σ, the statistics of each
    row (sums over its D features unless marked Σ_rows)::

        dγ = Σ_rows dy x̂      dβ = Σ_rows dy
        dx̂ = γ dy
        dx = (1/σ)/D · (D dx̂ − Σ_j dx̂_j − x̂ Σ_j dx̂_j x̂_j)

    (batch norm's formula with the roles of the axes exchanged.)
    """
    xhat, inv_std = cache
    rows = tuple(range(dy.ndim - 1))
    grads = {"gamma": jnp.sum(dy * xhat, axis=rows), "beta": jnp.sum(dy, axis=rows)}
    dxhat = params["gamma"] * dy
    d = dy.shape[-1]
    dx = (inv_std / d) * (
        d * dxhat
        - jnp.sum(dxhat, axis=-1, keepdims=True)
        - xhat * jnp.sum(dxhat * xhat, axis=-1, keepdims=True)
    )
    return grads, dx


def layernorm(eps: float = 1e-5, *, name: str = "layernorm") -> Layer:
    """Layer normalization over the last axis; params ``gamma`` (ones) and
    ``beta`` (zeros) of shape (D,). Same in training and evaluation."""
    if not (is_number(eps) and eps > 0):
        raise ValueError(f"{name} eps must be > 0; got {eps!r}")

    def init_fn(key, in_shape, dtype=jnp.float32):
        if len(in_shape) < 1:
            raise ValueError(
                f"{name} expects per-example inputs with a feature axis (last); "
                f"got per-example shape {tuple(in_shape)}"
            )
        d = in_shape[-1]
        params = {"gamma": jnp.ones((d,), dtype), "beta": jnp.zeros((d,), dtype)}
        return tuple(in_shape), params, ()

    def forward(params, state, x, *, key=None, train=False):
        y, cache = layernorm_forward(params, x, eps=eps)
        return y, cache, state

    def backward(params, cache, dy):
        return layernorm_backward(params, cache, dy)

    return Layer(name, init_fn, forward, backward)
