"""Activation functions, each beside its hand-written backward pass.

An activation layer computes ``y = f(z)`` elementwise. Its backward pass is the
chain rule for an elementwise map::

    dz = dy * f'(z)

so each activation here is a pair: ``forward(z) -> y`` and
``backward(z, y, dy) -> dz``. The backward may use ``y`` (the saved output)
when that is cheaper, e.g. sigmoid's ``dz = dy * y (1 - y)``.

At a kink the derivative follows the usual rule (ReLU: 1 if z > 0 else 0), and
each forward pass is written with ``jnp.where`` on the same condition so that
``jax.grad`` of the forward agrees with the hand-written backward exactly,
also at the kink.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxbp.checks import choose

LEAKY_RELU_SLOPE = 0.01
ELU_ALPHA = 1.0


class Activation(NamedTuple):
    """An elementwise activation: ``y = forward(z)``, ``dz = backward(z, y, dy)``."""

    name: str
    forward: Callable[[jax.Array], jax.Array]
    backward: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def identity(z):
    """y = z"""
    return z


def identity_backward(z, y, dy):
    """dz = dy"""
    return dy


def sigmoid(z):
    """y = σ(z) = 1 / (1 + exp(-z)), computed stably for any z."""
    return jax.nn.sigmoid(z)


def sigmoid_backward(z, y, dy):
    """dz = dy * σ(z) (1 - σ(z)) = dy * y (1 - y)"""
    return dy * (y * (1 - y))


def tanh(z):
    """y = tanh(z)"""
    return jnp.tanh(z)


def tanh_backward(z, y, dy):
    """dz = dy * (1 - tanh(z)²) = dy * (1 - y²)"""
    return dy * (1 - y * y)


def relu(z):
    """y = max(0, z), written as where(z > 0, z, 0)."""
    return jnp.where(z > 0, z, 0)


def relu_backward(z, y, dy):
    """dz = dy * (1 if z > 0 else 0)"""
    return dy * jnp.where(z > 0, 1, 0).astype(z.dtype)


def leaky_relu(z):
    """y = z if z > 0 else a z, with a = 0.01."""
    return jnp.where(z > 0, z, LEAKY_RELU_SLOPE * z)


def leaky_relu_backward(z, y, dy):
    """dz = dy * (1 if z > 0 else a)"""
    return dy * jnp.where(z > 0, 1, LEAKY_RELU_SLOPE).astype(z.dtype)


def elu(z):
    """y = z if z > 0 else α (exp(z) - 1), with α = 1.

    exp is taken of ``where(z > 0, 0, z)`` so that the branch ``where`` discards
    cannot overflow (an inf there would turn jax.grad's zero cotangent into NaN).
    """
    return jnp.where(z > 0, z, ELU_ALPHA * jnp.expm1(_nonpositive_part(z)))


def elu_backward(z, y, dy):
    """dz = dy * (1 if z > 0 else α exp(z))   (α exp(z) = y + α for z <= 0)"""
    slope = jnp.where(z > 0, 1, ELU_ALPHA * jnp.exp(_nonpositive_part(z)))
    return dy * slope.astype(z.dtype)


def _nonpositive_part(z):
    """min(z, 0) written with where (jnp.minimum splits the gradient at a tie)."""
    return jnp.where(z > 0, 0, z)


def softplus(z):
    """y = log(1 + exp(z)), computed as logaddexp(z, 0) (finite for any z)."""
    return jnp.logaddexp(z, 0)


def softplus_backward(z, y, dy):
    """dz = dy * σ(z)"""
    return dy * jax.nn.sigmoid(z)


def _normal_cdf(z):
    """Φ(z) = (1 + erf(z / √2)) / 2"""
    return 0.5 * (1 + jax.scipy.special.erf(z / math.sqrt(2)))


def gelu(z):
    """y = z Φ(z), the exact GELU (Hendrycks & Gimpel 2016), Φ the normal CDF."""
    return z * _normal_cdf(z)


def gelu_backward(z, y, dy):
    """dz = dy * (Φ(z) + z φ(z)), with φ(z) = exp(-z²/2) / √(2π)"""
    slope = _normal_cdf(z) + z * jnp.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return dy * slope


GELU_TANH_C = math.sqrt(2 / math.pi)
GELU_TANH_A = 0.044715


def gelu_tanh(z):
    """y = ½ z (1 + tanh(u)),  u = √(2/π) (z + a z³),  a = 0.044715: GELU's
    tanh approximation (Hendrycks & Gimpel 2016), GPT-2's form (PyTorch's
    ``gelu(approximate="tanh")``); within ~1e-3 of the exact ``gelu``."""
    u = GELU_TANH_C * (z + GELU_TANH_A * z * z * z)
    return 0.5 * z * (1 + jnp.tanh(u))


def gelu_tanh_backward(z, y, dy):
    """dz = dy * (½ (1 + tanh u) + ½ z (1 − tanh² u) du/dz),
    du/dz = √(2/π) (1 + 3a z²)"""
    t = jnp.tanh(GELU_TANH_C * (z + GELU_TANH_A * z * z * z))
    du = GELU_TANH_C * (1 + 3 * GELU_TANH_A * z * z)
    return dy * (0.5 * (1 + t) + 0.5 * z * (1 - t * t) * du)


def silu(z):
    """y = z σ(z) (SiLU, a.k.a. swish)."""
    return z * jax.nn.sigmoid(z)


def silu_backward(z, y, dy):
    """dz = dy * (σ(z) + z σ(z)(1 - σ(z))) = dy * σ(z) (1 + z (1 - σ(z)))"""
    s = jax.nn.sigmoid(z)
    return dy * (s * (1 + z * (1 - s)))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("identity", identity, identity_backward),
        Activation("sigmoid", sigmoid, sigmoid_backward),
        Activation("tanh", tanh, tanh_backward),
        Activation("relu", relu, relu_backward),
        Activation("leaky_relu", leaky_relu, leaky_relu_backward),
        Activation("elu", elu, elu_backward),
        Activation("softplus", softplus, softplus_backward),
        Activation("gelu", gelu, gelu_backward),
        Activation("silu", silu, silu_backward),
        Activation("gelu_tanh", gelu_tanh, gelu_tanh_backward),
    )
}

#: Activations whose derivative jumps at z = 0 (finite differences are not
#: valid within a step of the kink).
KINKED = ("relu", "leaky_relu", "elu")


def get(name: str) -> Activation:
    """The activation called ``name``; a ValueError lists the valid names."""
    return ACTIVATIONS[choose(name, ACTIVATIONS, "activation")]
