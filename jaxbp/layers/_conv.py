"""The 2-D convolution layer on NHWC images with an HWIO kernel.

Forward (cross-correlation, as every deep-learning library computes it), for
one spatial axis written out (the other is the same), ``x_p`` the input
padded by (lo, hi) rows (see ``_windows``)::

    y[b, o, f] = Σ_a Σ_c x_p[b, o s + a, c] W[a, c, f] + bias[f]
                 (a = 0 … k−1 window offsets, o = 0 … out−1, s the stride)
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxbp import initializers
from jaxbp.layers import _windows
from jaxbp.layers._protocol import Layer

_NHWC = ("NHWC", "HWIO", "NHWC")


def conv2d_forward(params, x, *, geometry):
    """y = x_p ⋆ W + bias   (x: (B, H, W, C), W: (kh, kw, C, F), y: (B, Ho, Wo, F);
    no bias: y = x_p ⋆ W)"""
    (a, b) = geometry
    y = lax.conv_general_dilated(
        x,
        params["w"],
        window_strides=(a.stride, b.stride),
        padding=((a.lo, a.hi), (b.lo, b.hi)),
        dimension_numbers=_NHWC,
    )
    return y + params["b"] if "b" in params else y


def conv2d_backward(params, x, dy, *, geometry):
    """The chain rule through y[b,o,f] = Σ_a Σ_c x_p[b, o s + a, c] W[a,c,f] + bias[f]
    (one spatial axis written; the other is alike), given dy = dL/dy::

        dbias[f]   = Σ_{b,o} dy[b, o, f]
        dW[a, c, f] = Σ_{b,o} x_p[b, o s + a, c] dy[b, o, f]
        dx_p[b, i, c] = Σ_{o,a : o s + a = i} Σ_f dy[b, o, f] W[a, c, f]

    The fast form, used by the layer: both sums computed as convolutions, so
    XLA runs them with its convolution kernels and never materializes the
    windows (``conv2d_backward_textbook`` is the same maths written over them).

    dW is itself a convolution: of x_p with dy as the kernel, the kernel's taps
    ``s`` apart (rhs_dilation = s), summing over the batch (the batch axis
    plays the channel, x's channels the batch); it has out·s − s + k (+ the
    unused VALID rows) outputs per axis, of which the first k are the kernel.

    dx is the transposed convolution: spread dy out with s − 1 zeros between
    entries (lhs_dilation = s), d̃[o s] = dy[o], so dx_p[i] = Σ_a d̃[i − a] W[a];
    with a' = k − 1 − a this is the cross-correlation of d̃, padded by k − 1,
    with the spatially flipped kernel, input and output channels swapped.
    Keeping rows lo … lo + H − 1 of dx_p (dx = dx_p without the padding) turns
    the padding of d̃ into (k − 1 − lo, H + lo − (out − 1) s − 1).
    """
    (a, b) = geometry
    w = params["w"]
    # written with explicit transposes to the canonical layouts: the same
    # convolution given as dimension_numbers ("CHWN", "IHWO", "HWNC") runs
    # much slower inside lax.scan on XLA:CPU
    dw = lax.conv_general_dilated(
        jnp.transpose(x, (3, 1, 2, 0)),  # (C, H, W, B): x's channels as the batch
        jnp.transpose(dy, (1, 2, 0, 3)),  # (Ho, Wo, B, F): dy as the kernel
        window_strides=(1, 1),
        padding=((a.lo, a.hi), (b.lo, b.hi)),
        rhs_dilation=(a.stride, b.stride),
        dimension_numbers=_NHWC,
    )  # (C, kh + extra, kw + extra, F)
    dw = jnp.transpose(dw[:, : a.window, : b.window], (1, 2, 0, 3))
    w_flipped = jnp.swapaxes(w[::-1, ::-1], 2, 3)  # (kh, kw, F, C)
    dx = lax.conv_general_dilated(
        dy,
        w_flipped,
        window_strides=(1, 1),
        padding=tuple(
            (g.window - 1 - g.lo, g.size + g.lo - (g.out - 1) * g.stride - 1)
            for g in geometry
        ),
        lhs_dilation=(a.stride, b.stride),
        dimension_numbers=_NHWC,
    )
    return _with_bias_grad(params, {"w": dw}, dy), dx


def conv2d_backward_textbook(params, x, dy, *, geometry):
    """The same gradients as ``conv2d_backward``, written over the windows
    (im2col): with ``patches[b, o1, o2, n, c] = x_p[b, o1 s1 + i, o2 s2 + j, c]``
    for the window offsets n = i·kw + j (see ``_windows.patches``)::

        dW[i, j, c, f] = Σ_{b,o1,o2} patches[b, o1, o2, n, c] dy[b, o1, o2, f]
        dpatches[b, o1, o2, n, c] = Σ_f dy[b, o1, o2, f] W[i, j, c, f]
        dx = dpatches added back where each entry came from, padding cropped
        dbias[f] = Σ_{b,o1,o2} dy[b, o1, o2, f]

    dW is the sum over output positions of input patch ⊗ dy, the form in
    textbooks; easy to check by eye, but it materializes kh·kw shifted copies
    of the input, which the fast ``conv2d_backward`` never does. Kept as the
    reference the fast form is tested against.
    """
    w = params["w"]
    kh, kw, c, f = w.shape
    windows = _windows.patches(_windows.pad_spatial(x, geometry, 0), geometry)
    dw = jnp.einsum("bhwnc,bhwf->ncf", windows, dy).reshape(w.shape)
    dwindows = jnp.einsum("bhwf,ncf->bhwnc", dy, w.reshape(kh * kw, c, f))
    dx = _windows.crop_spatial(_windows.unpatches(dwindows, geometry), geometry)
    return _with_bias_grad(params, {"w": dw}, dy), dx


def _with_bias_grad(params, grads, dy):
    """``grads`` plus dbias = Σ dy over batch and positions when there is a bias."""
    if "b" in params:
        grads["b"] = jnp.sum(dy, axis=(0, 1, 2))
    return grads


def conv2d(
    features: int,
    kernel_size=3,
    stride=1,
    padding: str = "SAME",
    init="he",
    *,
    use_bias: bool = True,
    textbook: bool = False,
    name: str = "conv2d",
) -> Layer:
    """A 2-D convolution with ``features`` output channels on (H, W, C) inputs.

    ``kernel_size`` and ``stride`` are an int or an (h, w) pair; ``padding`` is
    ``"SAME"`` (output ceil(H / stride)) or ``"VALID"``. The kernel is HWIO,
    drawn from ``init`` (fans counted with the receptive field); biases are 0.
    ``use_bias=False`` leaves out the bias (right before batch norm, whose β
    does its job). ``textbook=True`` runs :func:`conv2d_backward_textbook`
    (dW as the sum over output positions of patch ⊗ dy) instead of the fast
    :func:`conv2d_backward`: the same gradients, for reading and checking.
    """
    if isinstance(features, bool) or not isinstance(features, int) or features <= 0:
        raise ValueError(
            f"{name} features must be a positive integer; got {features!r}"
        )
    window = _windows.pair(kernel_size, "kernel_size", name)
    strides = _windows.pair(stride, "stride", name)
    pad = _windows.padding_name(padding, name)
    weight_init = initializers.get(init)

    def geometry_of(in_shape):
        return _windows.image_geometry(in_shape, window, strides, pad, name)

    def init_fn(key, in_shape, dtype=jnp.float32):
        (a, b) = geometry_of(in_shape)
        params = {"w": weight_init(key, (*window, in_shape[2], features), dtype)}
        if use_bias:
            params["b"] = jnp.zeros((features,), dtype)
        return (a.out, b.out, features), params, ()

    def forward(params, state, x, *, key=None, train=False):
        y = conv2d_forward(params, x, geometry=geometry_of(x.shape[1:]))
        return y, x, state

    backward_fn = conv2d_backward_textbook if textbook else conv2d_backward

    def backward(params, x, dy):
        return backward_fn(params, x, dy, geometry=geometry_of(x.shape[1:]))

    return Layer(name, init_fn, forward, backward)
