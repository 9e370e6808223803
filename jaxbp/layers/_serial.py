"""Sequential composition: run layers in order, backpropagate in reverse."""

from __future__ import annotations

import jax

from jaxbp.layers._protocol import Layer


def split_key(key, n: int):
    """n subkeys of ``key``, or n Nones when there is no key."""
    if key is None:
        return (None,) * n
    return tuple(jax.random.split(key, n))


def serial_forward(params, state, x, *, layers, key=None, train=False):
    """Forward through each layer in order, keeping every layer's cache:
    (y, caches, new_state), the last two tuples with one entry per layer."""
    caches, new_state = [], []
    for layer, p, s, k in zip(layers, params, state, split_key(key, len(layers))):
        x, cache, s = layer.forward(p, s, x, key=k, train=train)
        caches.append(cache)
        new_state.append(s)
    return x, tuple(caches), tuple(new_state)


def serial_backward(params, caches, dy, *, layers):
    """The chain rule, output to input: each layer maps dL/d(its output) to
    dL/d(its parameters) and dL/d(its input), which is the previous layer's dy."""
    grads = [None] * len(layers)
    for i in reversed(range(len(layers))):
        grads[i], dy = layers[i].backward(params[i], caches[i], dy)
    return tuple(grads), dy


def check_layers(layers, name: str) -> None:
    """Raise unless ``layers`` is a non-empty sequence of jaxbp Layers."""
    if not layers:
        raise ValueError(f"{name} needs at least one layer; got none")
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"{name} expects jaxbp Layers; got {type(layer).__name__}")


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Compose layers in sequence; params and state are tuples, one entry a layer.
    It takes tokens when its first layer does."""
    check_layers(layers, name)

    def init_fn(key, in_shape, dtype=None):
        params, state, shape = [], [], tuple(in_shape)
        for layer, k in zip(layers, split_key(key, len(layers))):
            shape, p, s = layer.init(k, shape, dtype)
            params.append(p)
            state.append(s)
        return shape, tuple(params), tuple(state)

    def forward(params, state, x, *, key=None, train=False):
        return serial_forward(params, state, x, layers=layers, key=key, train=train)

    def backward(params, caches, dy):
        return serial_backward(params, caches, dy, layers=layers)

    return Layer(name, init_fn, forward, backward, layers[0].takes_tokens)
