"""Window geometry shared by convolution and pooling (NHWC, two spatial axes).

For an input side of length ``n``, a window of ``k`` and a stride ``s``:

- ``VALID``: no padding; ``out = (n − k) // s + 1`` windows (the last
  ``n − (out − 1) s − k`` rows, if any, are in no window);
- ``SAME``: ``out = ceil(n / s)``; the input is padded with
  ``total = max((out − 1) s + k − n, 0)`` rows, ``lo = total // 2`` before and
  ``hi = total − lo`` after (TensorFlow's and ``lax``'s convention).

Window ``o`` then covers the padded rows ``o s … o s + k − 1``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from jaxbp.checks import choose
from jaxbp.layers._protocol import check_in_shape

PADDINGS = ("SAME", "VALID")


class Axis(NamedTuple):
    """One spatial axis: input size, window, stride, output size, padding lo/hi."""

    size: int
    window: int
    stride: int
    out: int
    lo: int
    hi: int

    @property
    def padded(self) -> int:
        return self.size + self.lo + self.hi


def pair(value, what: str, layer: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 2)`` as given; anything else a ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(value) != 2 or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    ):
        raise ValueError(
            f"{layer} {what} must be a positive integer or a pair of them; "
            f"got {value!r}"
        )
    return value


def padding_name(padding, layer: str) -> str:
    """``"SAME"`` or ``"VALID"`` (case-insensitive); anything else a ValueError."""
    name = padding.upper() if isinstance(padding, str) else padding
    return choose(name, PADDINGS, f"{layer} padding")


def axis(size: int, window: int, stride: int, padding: str, layer: str) -> Axis:
    """The geometry of one spatial axis (see the module docstring)."""
    if padding == "SAME":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + window - size, 0)
        return Axis(size, window, stride, out, total // 2, total - total // 2)
    if window > size:
        raise ValueError(
            f"{layer} window {window} is larger than the input side {size} "
            f"with VALID padding"
        )
    return Axis(size, window, stride, (size - window) // stride + 1, 0, 0)


def image_geometry(in_shape, window, stride, padding, layer) -> tuple[Axis, Axis]:
    """Check ``in_shape == (H, W, C)`` and return the two axes' geometry."""
    check_in_shape(layer, in_shape, 3, "(height, width, channels)")
    return tuple(
        axis(n, k, s, padding, layer) for n, k, s in zip(in_shape[:2], window, stride)
    )


def pad_spatial(x, geometry, value):
    """``x`` (B, H, W, C) padded by each axis' (lo, hi) with ``value``."""
    (a, b) = geometry
    config = [(0, 0, 0), (a.lo, a.hi, 0), (b.lo, b.hi, 0), (0, 0, 0)]
    return lax.pad(x, lax.convert_element_type(value, x.dtype), config)


def crop_spatial(x_padded, geometry):
    """The inverse of ``pad_spatial``: drop the padded rows and columns."""
    (a, b) = geometry
    return x_padded[:, a.lo : a.lo + a.size, b.lo : b.lo + b.size, :]


def offsets(geometry):
    """Every offset (i, j) inside a window, in row-major order."""
    (a, b) = geometry
    return [(i, j) for i in range(a.window) for j in range(b.window)]


def patches(x_padded, geometry):
    """The windows of a padded input: (B, Ho, Wo, K, C) with K = kh·kw offsets.

    ``patches[:, o1, o2, i·kw + j] = x_padded[:, o1 s1 + i, o2 s2 + j]`` — one
    strided slice per offset (i, j) in row-major window order.
    """
    (a, b) = geometry
    batch, channels = x_padded.shape[0], x_padded.shape[-1]
    slices = [
        lax.slice(
            x_padded,
            (0, i, j, 0),
            (
                batch,
                i + (a.out - 1) * a.stride + 1,
                j + (b.out - 1) * b.stride + 1,
                channels,
            ),
            (1, a.stride, b.stride, 1),
        )
        for i, j in offsets(geometry)
    ]
    return lax.concatenate([s[:, :, :, None, :] for s in slices], 3)


def unpatches(g, geometry):
    """The transpose of ``patches``: scatter-add (B, Ho, Wo, K, C) window entries
    back onto the padded input, (B, Hp, Wp, C).

    Offset (i, j) of window (o1, o2) lands on padded row ``o1 s1 + i``, column
    ``o2 s2 + j``: that is ``g[:, :, :, i·kw + j]`` spread out by ``s − 1`` zeros
    between entries (interior padding) and shifted by (i, j); entries of
    overlapping windows add up.
    """
    (a, b) = geometry
    zero = lax.convert_element_type(0, g.dtype)
    total = None
    for n, (i, j) in enumerate(offsets(geometry)):
        config = [
            (0, 0, 0),
            (i, a.padded - i - (a.out - 1) * a.stride - 1, a.stride - 1),
            (j, b.padded - j - (b.out - 1) * b.stride - 1, b.stride - 1),
            (0, 0, 0),
        ]
        part = lax.pad(g[:, :, :, n, :], zero, config)
        total = part if total is None else total + part
    return total


def shape_token(x):
    """A zero-size array with ``x``'s per-example shape, (0, *x.shape[1:]).

    Caches hold arrays only (so they pass through ``jit``, ``vmap`` and
    ``custom_vjp`` residuals); a layer whose backward pass needs only the
    input's shape keeps this instead of the input itself.
    """
    return jnp.zeros((0, *x.shape[1:]), x.dtype)
