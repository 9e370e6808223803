"""Inverted dropout (Srivastava et al. 2014): drop units in training, rescale the rest.

In training mode each unit is kept with probability 1 − rate, independently,
and the kept ones are scaled by 1/(1 − rate)::

    m = keep / (1 − rate),  keep ~ Bernoulli(1 − rate)      y = x ⊙ m

so E[y] = x and evaluation mode is the identity (no rescaling at test time).
The mask is drawn from the explicit PRNG ``key``: the same key gives the same
mask, in the forward pass and in ``jax.grad``'s replay of it.
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp

from jaxbp.layers._protocol import Layer


def dropout_mask(key, rate: float, shape, dtype):
    """m = keep / (1 − rate) with keep ~ Bernoulli(1 − rate), elementwise."""
    keep = jax.random.bernoulli(key, 1 - rate, shape)
    return jnp.where(keep, jnp.asarray(1 / (1 - rate), dtype), jnp.zeros((), dtype))


def dropout_backward(mask, dy):
    """y = x ⊙ m, so dx = dy ⊙ m (m = 0 or 1/(1 − rate)); the identity when no
    mask was drawn (evaluation mode, rate 0)."""
    return dy if mask is None else dy * mask


def dropout(rate: float, *, name: str = "dropout") -> Layer:
    """Inverted dropout dropping each unit with probability ``rate`` in [0, 1).

    Training mode (``train=True``) needs a PRNG ``key`` when ``rate > 0``;
    evaluation mode is the identity.
    """
    if (
        isinstance(rate, bool)
        or not isinstance(rate, numbers.Real)
        or not 0 <= rate < 1
    ):
        raise ValueError(f"{name} rate must be a number in [0, 1); got {rate!r}")
    rate = float(rate)

    def init_fn(key, in_shape, dtype=None):
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        if not train or rate == 0:
            return x, None, state
        if key is None:
            raise ValueError(
                f"{name} with rate {rate} needs a PRNG key in training mode "
                "(pass key=jax.random.key(...), or train=False to evaluate)"
            )
        mask = dropout_mask(key, rate, x.shape, x.dtype)
        return x * mask, mask, state

    def backward(params, mask, dy):
        return (), dropout_backward(mask, dy)

    return Layer(name, init_fn, forward, backward)
