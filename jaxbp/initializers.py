"""Weight initializers, with the variances of the papers.

An initializer is a function ``(key, shape, dtype) -> array``. For a dense
weight of shape ``(fan_in, fan_out)`` (or a conv kernel ``(kh, kw, c_in, c_out)``,
where the fans are multiplied by the receptive field ``kh * kw``):

- ``xavier`` (Glorot & Bengio 2010): ``W ~ N(0, 2 / (fan_in + fan_out))``.
- ``he`` (He et al. 2015): ``W ~ N(0, 2 / fan_in)``, for the ReLU family.
- ``lecun`` (LeCun et al. 1998): ``W ~ N(0, 1 / fan_in)``.
- ``normal(std)``: ``W ~ N(0, std²)``, a plain normal; the name ``"normal"`` is
  ``normal(1.0)``.

Biases start at zero. ``default_for(activation)`` is ``he`` for the ReLU family
and ``xavier`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxbp import draws
from jaxbp.checks import choose

Initializer = Callable[[jax.Array, tuple[int, ...], jnp.dtype], jax.Array]

RELU_FAMILY = ("relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu")


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: the last two axes, times the receptive field."""
    if len(shape) < 2:
        raise ValueError(f"a weight needs at least 2 dimensions; got shape {shape}")
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _normal_with_variance(variance_of_fans: Callable[[int, int], float]) -> Initializer:
    def init(key, shape, dtype=jnp.float32):
        std = math.sqrt(variance_of_fans(*fans(shape)))
        return std * draws.normal(key, shape, dtype)

    return init


xavier = _normal_with_variance(lambda fan_in, fan_out: 2.0 / (fan_in + fan_out))
xavier.__doc__ = "Glorot/Xavier normal: Var(W) = 2 / (fan_in + fan_out)."
he = _normal_with_variance(lambda fan_in, fan_out: 2.0 / fan_in)
he.__doc__ = "He/Kaiming normal: Var(W) = 2 / fan_in."
lecun = _normal_with_variance(lambda fan_in, fan_out: 1.0 / fan_in)
lecun.__doc__ = "LeCun normal: Var(W) = 1 / fan_in."


def normal(std: float = 1.0) -> Initializer:
    """A plain normal: W ~ N(0, std²)."""
    if not std > 0:
        raise ValueError(f"normal initializer std must be > 0; got {std!r}")

    def init(key, shape, dtype=jnp.float32):
        return std * draws.normal(key, shape, dtype)

    return init


INITIALIZERS: dict[str, Initializer] = {
    "xavier": xavier,
    "he": he,
    "lecun": lecun,
    "normal": normal(1.0),
}


def get(init: str | Initializer) -> Initializer:
    """An initializer by name (``xavier he lecun normal``) or a callable as given."""
    if callable(init):
        return init
    return INITIALIZERS[choose(init, INITIALIZERS, "init")]


def default_for(activation: str) -> str:
    """``he`` for the ReLU family, ``xavier`` otherwise."""
    return "he" if activation in RELU_FAMILY else "xavier"
