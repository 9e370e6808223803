"""The residual block (He et al. 2016): y = x + f(x), f any sequence of layers."""

from __future__ import annotations

from jaxbp.layers._protocol import Layer
from jaxbp.layers._serial import serial


def residual(*layers: Layer, name: str = "residual") -> Layer:
    """``y = x + f(x)`` with ``f = serial(*layers)``, which must keep the shape.

    Params and state are ``f``'s (tuples, one entry a layer).
    """
    inner = serial(*layers, name=f"{name}.f")

    def init_fn(key, in_shape, dtype=None):
        out_shape, params, state = inner.init(key, in_shape, dtype)
        if tuple(out_shape) != tuple(in_shape):
            raise ValueError(
                f"{name} needs layers that keep the shape, so that x + f(x) is "
                f"defined; f maps per-example shape {tuple(in_shape)} to "
                f"{tuple(out_shape)}"
            )
        return tuple(in_shape), params, state

    def forward(params, state, x, *, key=None, train=False):
        fx, cache, new_state = inner.forward(params, state, x, key=key, train=train)
        return x + fx, cache, new_state

    def backward(params, cache, dy):
        """y = x + f(x), so dy reaches x by two paths, added (the skip path
        passes it unchanged: gradients cannot vanish along it)::

        dθ_f = (backward of f)(dy)[params]
        dx = dy + (backward of f)(dy)[input]
        """
        grads, dx_f = inner.backward(params, cache, dy)
        return grads, dy + dx_f

    return Layer(name, init_fn, forward, backward)
