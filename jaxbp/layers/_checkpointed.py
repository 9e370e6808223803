"""Gradient checkpointing: a segment of layers that forgets its caches and recomputes them.

Backpropagation through ``L`` layers keeps every layer's cache (inputs,
pre-activations, masks) from the forward pass until that layer's backward
step: memory ``O(L)`` activations. ``checkpointed(*layers)`` wraps a segment
of layers into one layer whose forward pass keeps only the segment's *input*
(and the state, key and mode it ran with) as its cache::

    forward:   y = segment(x)                   cache = (x, state, key, train)
    backward:  caches = segment.forward(x)      # recompute, same key and state
               (dparams, dx) = segment.backward(caches, dy)

Split ``L`` layers into segments of ``s`` layers. During the backward pass the
model holds the ``L / s`` segment inputs plus the full caches of the one
segment being differentiated, so peak activation memory is ``O(L/s + s)``,
smallest at ``s ≈ √L``: ``O(√L)`` instead of ``O(L)``. The price is one extra
forward pass through every checkpointed segment: with a gradient costing about
three forward passes (forward, then ``dW`` and ``dx`` in the backward), that is
roughly 4/3 of the time of the plain gradient (Chen et al. 2016, "Training deep
nets with sublinear memory cost"; Griewank & Walther's checkpointing in reverse-mode AD).
The last segment need not be checkpointed: its caches are used as soon as the
forward pass ends, so recomputing them saves nothing (``checkpoint_last``).

Under ``jit`` the saving has to survive XLA:

- XLA eliminates common subexpressions (CSE): the recomputed forward is the
  same computation as the original one, so XLA merges the two, keeps the
  original caches alive and the saving is gone. ``jax.checkpoint`` guards
  against that with ``lax.optimization_barrier``, but XLA:CPU removes
  barriers (its ``cse_barrier_expander`` pass) *before* a later CSE pass: on
  CPU ``jax.checkpoint`` saves no memory at all (measured in
  ``jaxbp.bench``'s checkpoint section). Here the backward pass puts the
  recomputation inside a ``lax.cond`` branch whose predicate XLA cannot
  evaluate (``_opaque_true``): CSE works within one computation, so it cannot
  merge the branch with the forward pass; and the branch reads ``dy``, so it
  runs only after the later segments' backward passes (which free their
  caches).
- For ``backprop="autodiff"`` the forward pass is wrapped in ``jax.checkpoint``,
  so ``jax.grad`` saves the same segment inputs and recomputes them where the
  backend keeps the barrier (GPU, TPU; on CPU see above). ``jax.checkpoint``
  is not differentiation: without ``jax.grad`` around it it is an ordinary
  call, and the manual path runs no JAX differentiation.

``checkpointed_mlp(sizes, activation, segment_size)`` builds ``jaxbp.mlp``'s
layers grouped into such segments; ``checkpoint_model(model, segment_size)``
does the same for any sequential model. Their parameters are the plain model's
grouped by segment (``group_params`` / ``ungroup_params`` convert).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxbp.layers._protocol import Layer
from jaxbp.layers._serial import serial, serial_backward, serial_forward


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SegmentCache:
    """What a checkpointed segment keeps from its forward pass: its input, the
    state and key it ran with, and the mode (static, not an array)."""

    x: Any
    state: Any
    key: Any
    train: bool = dataclasses.field(metadata={"static": True}, default=False)


def checkpointed(*layers: Layer, name: str = "checkpointed") -> Layer:
    """A segment of layers whose backward pass recomputes the segment's forward.

    Params and state are tuples with one entry per inner layer (as for
    ``serial``). The cache is only the segment input (plus state and key); the
    backward pass reruns ``serial_forward`` to rebuild the inner caches, then
    ``serial_backward``. Same gradients as the plain layers, less memory, one
    more forward pass of the segment (see the module docstring).
    """
    if not layers:
        raise ValueError("checkpointed needs at least one layer; got none")
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(
                f"checkpointed expects jaxbp Layers; got {type(layer).__name__}"
            )
    segment = serial(*layers, name=name)

    def forward(params, state, x, *, key=None, train=False):
        def run(params, state, x, key):
            y, _, new_state = serial_forward(
                layers, params, state, x, key=key, train=train
            )
            return y, new_state

        # jax.checkpoint only matters to jax.grad (the autodiff path); here it
        # is a plain call, and the inner caches are dropped (dead code to XLA)
        y, new_state = jax.checkpoint(run, prevent_cse=True)(params, state, x, key)
        return y, SegmentCache(x, state, key, train), new_state

    def backward(params, cache: SegmentCache, dy):
        """caches = forward(x) again;  (dparams, dx) = backward(caches, dy)

        Inside a ``lax.cond`` that is always taken, so that XLA cannot merge
        the recomputation with the forward pass (see ``_opaque_true``).
        """

        def recompute_then_backward(operands):
            params, x, state, key, dy = operands
            _, caches, _ = serial_forward(
                layers, params, state, x, key=key, train=cache.train
            )
            return serial_backward(layers, params, caches, dy)

        def never_taken(operands):
            params, x = operands[:2]
            return jax.tree.map(jnp.zeros_like, params), jnp.zeros_like(x)

        operands = (params, cache.x, cache.state, cache.key, dy)
        return lax.cond(_opaque_true(), recompute_then_backward, never_taken, operands)

    return Layer(name, segment.init, forward, backward)


def _opaque_true():
    """A predicate that is always true but that XLA cannot evaluate at compile time.

    Used as the predicate of a ``lax.cond`` that fences the recomputation off in
    a branch computation of its own, where XLA's common-subexpression
    elimination cannot merge it with the forward pass (CSE works within one
    computation). ``lax.optimization_barrier`` alone is not enough: XLA:CPU
    removes barriers (its ``cse_barrier_expander`` pass) before a later CSE
    pass, and so undoes ``jax.checkpoint``'s rematerialization too.
    ``rng_uniform`` draws from XLA's RNG state, which no pass can fold; a
    number in [0, 1) is always < 2. (This is the widget ``jax.remat`` itself
    used before optimization barriers existed.)
    """
    zero, one = jnp.zeros((), jnp.float32), jnp.ones((), jnp.float32)
    return lax.rng_uniform(zero, one, ()) < 2


# ------------------------------------------------------------------ segmenting


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
    ``checkpointed`` layer (the last a plain ``serial`` one unless
    ``checkpoint_last``: recomputing it would save no memory)."""
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


def checkpoint_model(model, segment_size: int | None = None, *, checkpoint_last=False):
    """``model`` (a ``jaxbp.Model``) with its layers grouped into segments of
    ``segment_size`` layers (default ≈ √(number of layers)), each checkpointed."""
    from jaxbp.model import Model

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
):
    """``jaxbp.mlp(sizes, activation, init)`` with its layers in checkpointed segments.

    ``segment_size`` counts dense layers (each with the activation after it);
    the default is ≈ √(number of dense layers), the O(√L)-memory choice.
    ``ungroup_params`` turns the parameters into ``jaxbp.mlp``'s and
    ``group_params`` back.
    """
    from jaxbp.model import mlp

    plain = mlp(sizes, activation, init, dtype=dtype)
    n_dense = len(sizes) - 1
    size = default_segment_size(n_dense) if segment_size is None else segment_size
    blocks = segment_lengths(n_dense, size)
    # a block of k dense layers holds 2k layers (dense + activation), but the
    # last dense layer has no activation after it
    lengths = [2 * k for k in blocks]
    lengths[-1] -= 1
    segments = segment_layers(plain.layers, lengths, checkpoint_last=checkpoint_last)
    return type(plain)(segments, plain.in_shape, plain.dtype)


def group_params(flat, model) -> tuple:
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


__all__ = [
    "SegmentCache",
    "checkpoint_model",
    "checkpointed",
    "checkpointed_mlp",
    "default_segment_size",
    "group_params",
    "segment_layers",
    "segment_lengths",
    "ungroup_params",
]
