"""Gradient checkpointing for whole models: layers grouped into recomputed segments.

``jaxbp.layers.checkpointed(*layers)`` is one segment whose backward pass
recomputes its forward (its docstring has the memory argument and why the
recomputation is fenced off from XLA's CSE). This module splits a model's
layers into consecutive segments of ``s`` layers, each checkpointed: peak
activation memory ``O(L/s + s)``, smallest at ``s ≈ √L``.

- ``checkpointed_mlp(sizes, activation, segment_size)``: ``jaxbp.mlp``'s
  layers grouped into such segments;
- ``checkpoint_model(model, segment_size)``: the same for any sequential model.

Their parameters (and state, and gradients) are the plain model's grouped by
segment: ``group_params`` and ``ungroup_params`` convert. The last segment is a
plain ``serial`` one unless ``checkpoint_last``: its caches are used as soon as
the forward pass ends, so recomputing them would save nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxbp.layers import Layer, checkpointed, serial
from jaxbp.model import Model, mlp


def default_segment_size(n: int) -> int:
    """round(√n), at least 1: the segment size that balances ``n/s + s``."""
    return max(1, round(math.sqrt(n)))


def segment_lengths(n: int, segment_size: int) -> tuple[int, ...]:
    """Lengths of consecutive segments of ``segment_size`` covering ``n`` items."""
    if not (isinstance(segment_size, int) and segment_size > 0):
        raise ValueError(
            f"segment_size must be a positive integer; got {segment_size!r}"
        )
    full, rest = divmod(n, segment_size)
    return (segment_size,) * full + ((rest,) if rest else ())


def segment_layers(
    layers: Sequence[Layer],
    lengths: Sequence[int],
    *,
    checkpoint_last: bool = False,
) -> tuple[Layer, ...]:
    """Group ``layers`` into consecutive segments of ``lengths``, each one a
    ``checkpointed`` layer (the last a plain ``serial`` one named ``segment``
    unless ``checkpoint_last``)."""
    layers = tuple(layers)
    if sum(lengths) != len(layers) or any(n <= 0 for n in lengths):
        raise ValueError(
            f"segment lengths {tuple(lengths)} do not split {len(layers)} layers"
        )
    segments, start = [], 0
    for i, n in enumerate(lengths):
        group = layers[start : start + n]
        start += n
        last = i == len(lengths) - 1
        if last and not checkpoint_last:
            segments.append(serial(*group, name="segment"))
        else:
            segments.append(checkpointed(*group))
    return tuple(segments)


def checkpoint_model(
    model: Model, segment_size: int | None = None, *, checkpoint_last: bool = False
) -> Model:
    """``model`` with its layers grouped into segments of ``segment_size``
    layers (default ≈ √(number of layers)), each checkpointed."""
    n = len(model.layers)
    size = default_segment_size(n) if segment_size is None else segment_size
    segments = segment_layers(
        model.layers, segment_lengths(n, size), checkpoint_last=checkpoint_last
    )
    return Model(segments, model.in_shape, model.dtype)


def checkpointed_mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    segment_size: int | None = None,
    init=None,
    *,
    dtype=jnp.float32,
    checkpoint_last: bool = False,
) -> Model:
    """``jaxbp.mlp(sizes, activation, init)`` with its layers in checkpointed segments.

    ``segment_size`` counts dense layers (each with the activation after it);
    the default is ≈ √(number of dense layers), the O(√L)-memory choice.
    ``ungroup_params`` turns the parameters into ``jaxbp.mlp``'s and
    ``group_params`` back.
    """
    plain = mlp(sizes, activation, init, dtype=dtype)
    n_dense = len(sizes) - 1
    size = default_segment_size(n_dense) if segment_size is None else segment_size
    blocks = segment_lengths(n_dense, size)
    # a block of k dense layers holds 2k layers (dense + activation), but the
    # last dense layer has no activation after it
    lengths = [2 * k for k in blocks]
    lengths[-1] -= 1
    segments = segment_layers(plain.layers, lengths, checkpoint_last=checkpoint_last)
    return Model(segments, plain.in_shape, plain.dtype)


def group_params(flat, model: Model) -> tuple:
    """A plain model's per-layer tuple (params, state or grads) grouped into the
    segments of the segmented ``model`` (e.g. from ``checkpointed_mlp``)."""
    lengths = [len(p) for p in jax.eval_shape(model.init, jax.random.key(0))]
    flat = tuple(flat)
    if sum(lengths) != len(flat):
        raise ValueError(
            f"segmented model has {sum(lengths)} layers in segments {lengths}; "
            f"got a tuple of {len(flat)}"
        )
    out, start = [], 0
    for n in lengths:
        out.append(flat[start : start + n])
        start += n
    return tuple(out)


def ungroup_params(nested) -> tuple:
    """Per-segment tuples flattened back into one entry per layer."""
    return tuple(p for segment in nested for p in segment)
