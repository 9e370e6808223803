"""Max pooling, average pooling (NHWC) and flatten.

Both poolings look at the windows of the padded input (see ``_windows``):
``patches[b, o1, o2, n, c]`` is offset n = i·kw + j (row-major) of window
(o1, o2). Each window's output is a function of its own entries only, so the
backward pass computes dL/d(patches) window by window and adds the entries
back where they came from (``unpatches``, the transpose of ``patches``; an
input inside several overlapping windows collects from each).

Max-pool ties. The derivative of a maximum is undefined where several entries
tie (frequent after a ReLU, whose zeros tie). The rule here is the one of
``jax.grad`` of ``lax.reduce_window(x, -inf, lax.max, ...)``, whose transpose
``select_and_scatter_add`` scans each window in row-major order with ``>=`` and
keeps the first maximum: the whole of dy goes to the *first* maximal entry of
the window in row-major order. The forward pass is written as
``take_along_axis(patches, argmax(patches))`` with ``argmax`` returning the
first maximum, so ``jax.grad`` of this forward pass routes the gradient by the
same rule by construction, on any backend.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxbp.layers import _windows
from jaxbp.layers._protocol import Layer


def max_pool_forward(x, *, geometry):
    """y = max over each window of x_p (x_p padded with −inf), taken at the
    window's first arg-max in row-major order; returns (y, arg-max (B, Ho, Wo, C))."""
    padded = _windows.pad_spatial(x, geometry, -jnp.inf)
    windows = _windows.patches(padded, geometry)
    index = jnp.argmax(windows, axis=3)
    y = jnp.take_along_axis(windows, index[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return y, index


def max_pool_backward(index, dy, *, geometry):
    """y = x_p[first arg-max of the window], so all of dy goes to that entry::

    dpatches[b, o1, o2, n, c] = dy[b, o1, o2, c] · [n == argmax(b, o1, o2, c)]
    dx = unpatches(dpatches), padding cropped
    """
    k = geometry[0].window * geometry[1].window
    hit = index[:, :, :, None, :] == jnp.arange(k)[:, None]
    dpatches = jnp.where(hit, dy[:, :, :, None, :], jnp.zeros((), dy.dtype))
    return _windows.crop_spatial(_windows.unpatches(dpatches, geometry), geometry)


def window_counts(geometry):
    """How many real (not padded) entries each window holds, shape (Ho, Wo, 1)."""
    per_axis = []
    for g in geometry:
        starts = [o * g.stride - g.lo for o in range(g.out)]
        per_axis.append([min(s + g.window, g.size) - max(s, 0) for s in starts])
    rows, cols = per_axis
    return jnp.asarray([[r * c for c in cols] for r in rows])[:, :, None]


def avg_pool_forward(x, *, geometry):
    """y[o] = (1/n_o) Σ_{a in window o} x_p[o s + a], n_o the number of real
    entries in window o (padding is not counted)."""
    windows = _windows.patches(_windows.pad_spatial(x, geometry, 0), geometry)
    return jnp.sum(windows, axis=3) / window_counts(geometry).astype(x.dtype)


def avg_pool_backward(dy, *, geometry):
    """y[o] = (1/n_o) Σ_{a in window o} x_p[o s + a], so each entry of window o
    receives dy[o] / n_o::

    dpatches[b, o1, o2, n, c] = dy[b, o1, o2, c] / n_(o1, o2)
    dx = unpatches(dpatches), padding cropped
    """
    k = geometry[0].window * geometry[1].window
    share = dy / window_counts(geometry).astype(dy.dtype)
    b, ho, wo, c = dy.shape
    dpatches = jnp.broadcast_to(share[:, :, :, None, :], (b, ho, wo, k, c))
    return _windows.crop_spatial(_windows.unpatches(dpatches, geometry), geometry)


def _pool(forward_fn, backward_fn, window, stride, padding, name) -> Layer:
    """A pooling layer from ``forward_fn(x, *, geometry) -> (y, saved)`` and
    ``backward_fn(saved, dy, *, geometry) -> dx``. The cache keeps ``saved`` and a
    zero-size token of the input's shape, from which the geometry is rebuilt."""
    window = _windows.pair(window, "window", name)
    strides = window if stride is None else _windows.pair(stride, "stride", name)
    pad = _windows.padding_name(padding, name)

    def geometry_of(in_shape):
        return _windows.image_geometry(in_shape, window, strides, pad, name)

    def init_fn(key, in_shape, dtype=None):
        (a, b) = geometry_of(in_shape)
        return (a.out, b.out, in_shape[2]), (), ()

    def forward(params, state, x, *, key=None, train=False):
        y, saved = forward_fn(x, geometry=geometry_of(x.shape[1:]))
        return y, (saved, _windows.shape_token(x)), state

    def backward(params, cache, dy):
        saved, token = cache
        return (), backward_fn(saved, dy, geometry=geometry_of(token.shape[1:]))

    return Layer(name, init_fn, forward, backward)


def max_pool(window=2, stride=None, padding: str = "VALID", *, name="max_pool"):
    """Max pooling over ``window`` (int or pair) with ``stride`` (default: the
    window) and ``"VALID"`` or ``"SAME"`` padding, on (H, W, C) inputs.

    At ties the first maximum in row-major window order gets the gradient, as
    with ``jax.grad`` of ``lax.reduce_window`` (see the module docstring).
    """
    return _pool(max_pool_forward, max_pool_backward, window, stride, padding, name)


def avg_pool(window=2, stride=None, padding: str = "VALID", *, name="avg_pool"):
    """Average pooling over ``window`` with ``stride`` (default: the window) on
    (H, W, C) inputs; with SAME padding a window averages its real entries only."""

    def forward_fn(x, *, geometry):
        return avg_pool_forward(x, geometry=geometry), ()

    def backward_fn(saved, dy, *, geometry):
        return avg_pool_backward(dy, geometry=geometry)

    return _pool(forward_fn, backward_fn, window, stride, padding, name)


def flatten(*, name: str = "flatten") -> Layer:
    """Flatten each example to a vector: (B, d1, d2, …) → (B, d1·d2·…)."""

    def init_fn(key, in_shape, dtype=None):
        if len(in_shape) < 1:
            raise ValueError(
                f"{name} expects per-example inputs with at least one axis; "
                f"got per-example shape {tuple(in_shape)}"
            )
        return (math.prod(in_shape),), (), ()

    def forward(params, state, x, *, key=None, train=False):
        return x.reshape(x.shape[0], -1), _windows.shape_token(x), state

    def backward(params, token, dy):
        """dx = dy reshaped to the input's shape (a reshape only moves entries)."""
        return (), dy.reshape(dy.shape[0], *token.shape[1:])

    return Layer(name, init_fn, forward, backward)
