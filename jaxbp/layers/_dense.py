"""The dense (fully connected) layer: ``y = x W + b``."""

from __future__ import annotations

import jax.numpy as jnp

from jaxbp import initializers
from jaxbp.layers._protocol import Layer, check_in_shape


def dense_forward(params, x):
    """y = x W + b   (x: (B, n_in), W: (n_in, n_out), b: (n_out,); no b: y = x W)"""
    y = x @ params["w"]
    return y + params["b"] if "b" in params else y


def dense_backward(params, x, dy):
    """Chain rule through y = x W + b, given dy = dL/dy of shape (B, n_out)::

    dW = xᵀ dy          (n_in, n_out)
    db = Σ_batch dy     (n_out,)
    dx = dy Wᵀ          (B, n_in)
    """
    grads = {"w": x.T @ dy}
    if "b" in params:
        grads["b"] = jnp.sum(dy, axis=0)
    return grads, dy @ params["w"].T


def dense(
    out_features: int, *, init="xavier", use_bias: bool = True, name: str = "dense"
) -> Layer:
    """A dense layer with ``out_features`` outputs; weights from ``init``, biases 0.

    ``use_bias=False`` leaves out ``b``: right before batch norm a bias is
    cancelled by the mean subtraction, its gradient is exactly 0 up to
    rounding, and an adaptive optimizer would turn that rounding into steps.
    """
    if not (isinstance(out_features, int) and out_features > 0):
        raise ValueError(
            f"dense layer size must be a positive integer; got {out_features!r}"
        )
    weight_init = initializers.get(init)

    def init_fn(key, in_shape, dtype=jnp.float32):
        check_in_shape(name, in_shape, 1, "(features,)")
        params = {"w": weight_init(key, (in_shape[0], out_features), dtype)}
        if use_bias:
            params["b"] = jnp.zeros((out_features,), dtype)
        return (out_features,), params, ()

    def forward(params, state, x, *, key=None, train=False):
        return dense_forward(params, x), x, state

    def backward(params, x, dy):
        return dense_backward(params, x, dy)

    return Layer(name, init_fn, forward, backward)
