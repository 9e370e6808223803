"""Batch normalization (Ioffe & Szegedy 2015), channels last.

Statistics are taken per channel (the last axis) over the batch axis and, for
images (B, H, W, C) or sequences, over every other axis too: N = B·H·W values
per channel. In training mode::

    μ = (1/N) Σ x        σ² = (1/N) Σ (x − μ)²     (biased batch variance)
    x̂ = (x − μ) / σ     σ = sqrt(σ² + eps)
    y = γ x̂ + β

and the running averages in ``state`` are updated as
``mean ← momentum · mean + (1 − momentum) · μ`` and likewise ``var`` with σ²
(state starts at mean 0, var 1). In evaluation mode the running averages
replace μ and σ², which are then constants.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from jaxbp.checks import is_number
from jaxbp.layers._protocol import Layer


class BatchStatsCache(NamedTuple):
    """Training mode: x̂ and 1/σ of the batch statistics (which depend on x)."""

    xhat: object
    inv_std: object


class RunningStatsCache(NamedTuple):
    """Evaluation mode: x̂ and 1/σ of the running averages (constants)."""

    xhat: object
    inv_std: object


def _stat_axes(x):
    return tuple(range(x.ndim - 1))


def batchnorm_forward(params, state, x, *, train, momentum, eps):
    """(y, cache, new_state): y = γ x̂ + β with batch statistics (train) or the
    running averages (eval), see the module docstring."""
    axes = _stat_axes(x)
    if train:
        mean = jnp.mean(x, axis=axes)
        var = jnp.mean(jnp.square(x - mean), axis=axes)
        new_state = {
            "mean": momentum * state["mean"] + (1 - momentum) * mean,
            "var": momentum * state["var"] + (1 - momentum) * var,
        }
        cache_type = BatchStatsCache
    else:
        mean, var, new_state = state["mean"], state["var"], state
        cache_type = RunningStatsCache
    inv_std = 1 / jnp.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    y = params["gamma"] * xhat + params["beta"]
    return y, cache_type(xhat, inv_std), new_state


def batchnorm_backward(params, cache, dy):
    """The chain rule through y = γ x̂ + β, x̂ = (x − μ)/σ, given dy = dL/dy
    (sums Σ over the N values of a channel: batch and spatial axes)::

        dγ = Σ dy x̂          dβ = Σ dy

    Evaluation mode (μ, σ constants):  dx = (γ/σ) dy.

    Training mode, μ and σ functions of x: with dx̂ = γ dy,
    ∂μ/∂x_i = 1/N and ∂σ/∂x_i = x̂_i/N, so

        dx_i = (1/σ) (dx̂_i − (1/N) Σ_j dx̂_j − x̂_i (1/N) Σ_j dx̂_j x̂_j)
             = (γ/σ)/N · (N dy_i − Σ dy − x̂_i Σ(dy x̂))

    (the mean term removes dy's component along the constant, the last its
    component along x̂: normalization's two invariances).
    """
    axes = _stat_axes(dy)
    xhat, inv_std = cache
    gamma = params["gamma"]
    sum_dy = jnp.sum(dy, axis=axes)
    sum_dy_xhat = jnp.sum(dy * xhat, axis=axes)
    grads = {"gamma": sum_dy_xhat, "beta": sum_dy}
    if isinstance(cache, RunningStatsCache):
        return grads, gamma * inv_std * dy
    n = dy.size // dy.shape[-1]
    dx = (gamma * inv_std / n) * (n * dy - sum_dy - xhat * sum_dy_xhat)
    return grads, dx


def batchnorm(momentum: float = 0.9, eps: float = 1e-5, *, name="batchnorm") -> Layer:
    """Batch normalization over the batch (and spatial) axes, per channel (last axis).

    Params ``gamma`` (ones) and ``beta`` (zeros) of shape (C,); state
    ``{"mean", "var"}`` running averages updated with ``momentum`` in training
    mode and used in evaluation mode.
    """
    if not (is_number(momentum) and 0 <= momentum <= 1):
        raise ValueError(f"{name} momentum must be in [0, 1]; got {momentum!r}")
    if not (is_number(eps) and eps > 0):
        raise ValueError(f"{name} eps must be > 0; got {eps!r}")

    def init_fn(key, in_shape, dtype=jnp.float32):
        if len(in_shape) < 1:
            raise ValueError(
                f"{name} expects per-example inputs (features,) or (H, W, channels), "
                f"channels last; got per-example shape {tuple(in_shape)}"
            )
        c = in_shape[-1]
        params = {"gamma": jnp.ones((c,), dtype), "beta": jnp.zeros((c,), dtype)}
        state = {"mean": jnp.zeros((c,), dtype), "var": jnp.ones((c,), dtype)}
        return tuple(in_shape), params, state

    def forward(params, state, x, *, key=None, train=False):
        return batchnorm_forward(
            params, state, x, train=train, momentum=momentum, eps=eps
        )

    def backward(params, cache, dy):
        return batchnorm_backward(params, cache, dy)

    return Layer(name, init_fn, forward, backward)
