"""Random translation: data augmentation as a layer (NHWC images).

In training mode every image b of the batch is shifted by its own integer
offset (s_b, t_b), drawn uniformly from [−k, k]² with the layer's PRNG ``key``
(like dropout's mask), and the pixels shifted in from outside the image are
zero::

    y[b, i, j, c] = x[b, i − s_b, j − t_b, c]   (0 when i − s_b or j − t_b is
                                                 outside the image)

Evaluation mode is the identity. The same key gives the same offsets, in the
forward pass and in ``jax.grad``'s replay of it. Put it first in a model to
augment the inputs (a differently shifted copy of each image every step).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp.layers._protocol import Layer, check_in_shape


def translation_offsets(key, max_shift: int, batch: int):
    """(batch, 2) int32 offsets (s_b, t_b), each uniform on {−k, ..., k}."""
    return jax.random.randint(key, (batch, 2), -max_shift, max_shift + 1, jnp.int32)


def translate(x, offsets, *, max_shift: int):
    """y[b, i, j] = x[b, i − s_b, j − t_b] with zero fill, for (B, H, W, C) ``x``
    and offsets (s_b, t_b) in [−max_shift, max_shift]."""
    k = max_shift
    _, height, width, channels = x.shape
    padded = jnp.pad(x, ((0, 0), (k, k), (k, k), (0, 0)))

    def one(image, offset):  # y[i, j] = padded[i + k − s, j + k − t]
        start = (k - offset[0], k - offset[1], jnp.zeros((), offset.dtype))
        return lax.dynamic_slice(image, start, (height, width, channels))

    return jax.vmap(one)(padded, offsets)


def translate_backward(offsets, dy, *, max_shift: int):
    """y = x shifted by (s, t), so dx[b, i, j] = dy[b, i + s_b, j + t_b] (0 when
    outside): dx = translate(dy, −offsets), the inverse shift, and the pixels
    of x shifted out of the image get zero gradient. The identity when no
    offsets were drawn (evaluation mode, max_shift 0)."""
    return dy if offsets is None else translate(dy, -offsets, max_shift=max_shift)


def random_translate(max_shift: int, *, name: str = "random_translate") -> Layer:
    """Shift each image by a random integer offset in [−max_shift, max_shift]
    pixels along height and width (zero fill) in training mode.

    Inputs are NHWC images. Training mode (``train=True``) needs a PRNG ``key``
    when ``max_shift > 0``; evaluation mode is the identity.
    """
    if (
        isinstance(max_shift, bool)
        or not isinstance(max_shift, numbers.Integral)
        or max_shift < 0
    ):
        raise ValueError(f"{name} max_shift must be an integer >= 0; got {max_shift!r}")
    max_shift = int(max_shift)

    def init_fn(key, in_shape, dtype=None):
        check_in_shape(name, in_shape, 3, "(height, width, channels)")
        return tuple(in_shape), (), ()

    def forward(params, state, x, *, key=None, train=False):
        if not train or max_shift == 0:
            return x, None, state
        if key is None:
            raise ValueError(
                f"{name} with max_shift {max_shift} needs a PRNG key in training "
                "mode (pass key=jax.random.key(...), or train=False to evaluate)"
            )
        offsets = translation_offsets(key, max_shift, x.shape[0])
        return translate(x, offsets, max_shift=max_shift), offsets, state

    def backward(params, offsets, dy):
        return (), translate_backward(offsets, dy, max_shift=max_shift)

    return Layer(name, init_fn, forward, backward)
