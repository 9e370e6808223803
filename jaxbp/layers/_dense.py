"""The dense (fully connected) layer: ``y = x W + b`` on the last axis of x
((B, n_in) or sequences (B, T, n_in))."""

from __future__ import annotations

import jax.numpy as jnp

from jaxbp import initializers
from jaxbp.layers._protocol import Layer, check_in_shape


def dense_forward(params, x):
    """y = x W + b   (x: (B, n_in) or (B, T, n_in), W: (n_in, n_out), b: (n_out,);
    no b: y = x W), on the last axis of x."""
    y = x @ params["w"]
    return y + params["b"] if "b" in params else y


def dense_backward(params, x, dy):
    """Chain rule through y = x W + b, given dy = dL/dy of shape (B, n_out)
    or (B, T, n_out)::

    dW = xᵀ dy          (n_in, n_out)   for sequences Σ_{b,t} x_btᵀ dy_bt
    db = Σ_batch dy     (n_out,)        for sequences Σ_{b,t} dy_bt
    dx = dy Wᵀ          x's shape
    """
    w = params["w"]
    rows_x, rows_dy = x.reshape(-1, w.shape[0]), dy.reshape(-1, w.shape[1])
    grads = {"w": rows_x.T @ rows_dy}
    if "b" in params:
        grads["b"] = jnp.sum(rows_dy, axis=0)
    return grads, dy @ w.T


def dense(
    out_features: int, *, init="xavier", use_bias: bool = True, name: str = "dense"
) -> Layer:
    """A dense layer with ``out_features`` outputs; weights from ``init``, biases 0.

    Per-example inputs (features,) or (time, features): on sequences the same
    W and b apply at every time step (a language model's head).

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
        if len(in_shape) != 2:
            check_in_shape(name, in_shape, 1, "(features,) or (time, features)")
        params = {"w": weight_init(key, (in_shape[-1], out_features), dtype)}
        if use_bias:
            params["b"] = jnp.zeros((out_features,), dtype)
        return (*in_shape[:-1], out_features), params, ()

    def forward(params, state, x, *, key=None, train=False):
        return dense_forward(params, x), x, state

    def backward(params, x, dy):
        return dense_backward(params, x, dy)

    return Layer(name, init_fn, forward, backward)
