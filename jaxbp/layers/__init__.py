"""Layers on the layer protocol: ``init``, ``forward`` (returns a cache) and ``backward``.

Each layer's backward pass sits next to its forward pass and states its
derivative in its docstring.
"""

from jaxbp.layers._activation import activation, activation_backward
from jaxbp.layers._dense import dense, dense_backward, dense_forward
from jaxbp.layers._protocol import Layer
from jaxbp.layers._serial import serial, serial_backward, serial_forward, split_key

__all__ = [
    "Layer",
    "activation",
    "activation_backward",
    "dense",
    "dense_backward",
    "dense_forward",
    "serial",
    "serial_backward",
    "serial_forward",
    "split_key",
]
