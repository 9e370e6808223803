"""Softmax as a layer of its own, over the last axis.

::

    y_i = exp(x_i − m) / Σ_j exp(x_j − m),     m = max_j x_j

(subtracting m changes nothing mathematically and keeps exp finite; it is held
constant, ``stop_gradient``, since y does not depend on it.) For training a
classifier prefer a linear output with the ``cross_entropy`` loss, which fuses
softmax and log; this layer is for models that need probabilities inside.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxbp.layers._protocol import Layer


def softmax_forward(x):
    """y = exp(x − m) / Σ_j exp(x_j − m) along the last axis."""
    e = jnp.exp(x - lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def softmax_backward(y, dy):
    """The Jacobian of softmax is ∂y_j/∂x_i = y_j (δ_ij − y_i), so

    dx_i = Σ_j dy_j y_j (δ_ij − y_i) = y_i (dy_i − Σ_j dy_j y_j)
    i.e.  dx = y ⊙ (dy − Σ_j dy_j y_j)
    """
    return y * (dy - jnp.sum(dy * y, axis=-1, keepdims=True))


def softmax(*, name: str = "softmax") -> Layer:
    """Softmax over the last axis (per example, per position)."""

    def init_fn(key, in_shape, dtype=None):
        if len(in_shape) < 1:
            raise ValueError(
                f"{name} expects per-example inputs with a class axis (last); "
                f"got per-example shape {tuple(in_shape)}"
            )
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        y = softmax_forward(x)
        return y, y, state

    def backward(params, y, dy):
        return (), softmax_backward(y, dy)

    return Layer(name, init_fn, forward, backward)
