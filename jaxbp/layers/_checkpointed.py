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
nets with sublinear memory cost"; Griewank & Walther's checkpointing in
reverse-mode AD). ``jaxbp.remat`` groups a whole model into such segments.

Two forms of the backward pass, the same numbers:

- ``checkpointed_backward_textbook``: the recomputation as written above,
  forward again, then backward.
- ``checkpointed_backward`` (used by the layer): the same inside a
  ``lax.cond`` branch, so that the saving survives XLA. XLA eliminates common
  subexpressions (CSE): the recomputed forward is the same computation as the
  original one, so XLA merges the two, keeps the original caches alive and
  the saving is gone. ``jax.checkpoint`` guards against that with
  ``lax.optimization_barrier``, but XLA:CPU removes barriers (its
  ``cse_barrier_expander`` pass) *before* a later CSE pass, so on CPU
  ``jax.checkpoint`` saves no memory at all (``benchmarks/``' checkpoint
  section measures it). A branch whose predicate XLA cannot evaluate
  (``_opaque_true``) is a computation of its own, which CSE (working within
  one computation) cannot merge with the forward pass; and the branch reads
  ``dy``, so it runs only after the later segments' backward passes (which
  free their caches).

For ``backprop="autodiff"`` the forward pass is wrapped in ``jax.checkpoint``,
so ``jax.grad`` saves the same segment inputs and recomputes them where the
backend keeps the barrier (GPU, TPU; on CPU see above). ``jax.checkpoint`` is
not differentiation: without ``jax.grad`` around it it is an ordinary call,
and the manual path runs no JAX differentiation.
"""

from __future__ import annotations

import dataclasses
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


def checkpointed_backward_textbook(params, cache: SegmentCache, dy, *, layers):
    """The recomputation as the textbook writes it::

        caches = forward(x)              (same state, key and mode as before)
        (dparams, dx) = backward(caches, dy)

    Under ``jit`` XLA may merge this forward with the original one (see the
    module docstring), and then nothing is saved: ``checkpointed_backward``
    fences it off. Kept as the reference the fenced form is tested against.
    """
    _, caches, _ = serial_forward(
        params, cache.state, cache.x, layers=layers, key=cache.key, train=cache.train
    )
    return serial_backward(params, caches, dy, layers=layers)


def checkpointed_backward(params, cache: SegmentCache, dy, *, layers):
    """``checkpointed_backward_textbook`` inside a ``lax.cond`` that is always
    taken, so that XLA cannot merge the recomputation with the forward pass
    (see ``_opaque_true``): the same numbers, and the memory saving kept."""

    def recompute_then_backward(operands):
        return checkpointed_backward_textbook(*operands, layers=layers)

    def never_taken(operands):
        params, cache, _ = operands
        return jax.tree.map(jnp.zeros_like, params), jnp.zeros_like(cache.x)

    operands = (params, cache, dy)
    return lax.cond(_opaque_true(), recompute_then_backward, never_taken, operands)


def checkpointed(
    *layers: Layer, textbook: bool = False, name: str = "checkpointed"
) -> Layer:
    """A segment of layers whose backward pass recomputes the segment's forward.

    Params and state are tuples with one entry per inner layer (as for
    ``serial``). The cache is only the segment input (plus state and key); the
    backward pass reruns the segment's forward to rebuild the inner caches,
    then its backward (``checkpointed_backward``). Same gradients as the plain
    layers, less memory, one more forward pass of the segment.
    ``textbook=True`` runs ``checkpointed_backward_textbook`` (the plain
    recomputation, without the ``lax.cond`` fence against XLA's CSE).
    """
    segment = serial(*layers, name=name)  # (checks the layers)

    def forward(params, state, x, *, key=None, train=False):
        def run(params, state, x, key):
            y, _, new_state = serial_forward(
                params, state, x, layers=layers, key=key, train=train
            )
            return y, new_state

        # jax.checkpoint only matters to jax.grad (the autodiff path); here it
        # is a plain call, and the inner caches are dropped (dead code to XLA)
        y, new_state = jax.checkpoint(run, prevent_cse=True)(params, state, x, key)
        return y, SegmentCache(x, state, key, train), new_state

    backward_fn = checkpointed_backward_textbook if textbook else checkpointed_backward

    def backward(params, cache: SegmentCache, dy):
        return backward_fn(params, cache, dy, layers=layers)

    return Layer(name, segment.init, forward, backward, segment.takes_tokens)


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
