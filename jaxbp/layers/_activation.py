"""The activation layer: ``y = f(z)`` elementwise, any of ``jaxbp.activations``."""

from __future__ import annotations

from jaxbp import activations
from jaxbp.layers._protocol import Layer


def activation_backward(cache, dy, *, fn: activations.Activation):
    """dz = dy * f'(z), elementwise, with ``cache = (z, y)``: ``fn.backward``
    may use the saved output y (sigmoid: dz = dy * y (1 − y))."""
    z, y = cache
    return fn.backward(z, y, dy)


def activation(name: str) -> Layer:
    """An elementwise activation layer by name (``identity sigmoid tanh relu ...``)."""
    fn = activations.get(name)

    def init_fn(key, in_shape, dtype=None):
        return tuple(in_shape), (), ()

    def forward(params, state, z, *, key=None, train=False):
        y = fn.forward(z)
        return y, (z, y), state

    def backward(params, cache, dy):
        return (), activation_backward(cache, dy, fn=fn)

    return Layer(name, init_fn, forward, backward)
