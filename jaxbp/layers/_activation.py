"""The activation layer: ``y = f(z)`` elementwise, any of ``jaxbp.activations``."""

from __future__ import annotations

from jaxbp import activations
from jaxbp.layers._protocol import Layer


def activation_backward(fn: activations.Activation, z, y, dy):
    """dz = dy * f'(z)   (elementwise; f'(z) may use the saved output y)"""
    return dy * fn.derivative(z, y)


def activation(name: str) -> Layer:
    """An elementwise activation layer by name (``identity sigmoid tanh relu ...``)."""
    fn = activations.get(name)

    def init_fn(key, in_shape, dtype=None):
        return tuple(in_shape), (), ()

    def forward(params, state, z, *, key=None, train=False):
        y = fn.forward(z)
        return y, (z, y), state

    def backward(params, cache, dy):
        z, y = cache
        return (), activation_backward(fn, z, y, dy)

    return Layer(name, init_fn, forward, backward)
