"""The layer protocol: three pure functions, stax-style, extended with a backward pass.

::

    init(key, in_shape, dtype)            -> (out_shape, params, state)
    forward(params, state, x, *, key, train) -> (y, cache, new_state)
    backward(params, cache, dy)           -> (dparams, dx)

- Shapes are per example (no batch axis): a dense layer on 64 features has
  ``in_shape == (64,)``; arrays passed to ``forward`` carry a leading batch axis.
- ``params`` is a pytree of arrays (``()`` for a layer without parameters);
  ``dparams`` has exactly its tree structure.
- ``state`` holds what a layer updates in the forward pass but does not learn by
  gradient (batch norm's running averages); ``()`` when there is none.
- ``key`` is a PRNG key for random layers (dropout) or ``None``; ``train``
  switches training behaviour (dropout on, batch statistics) from evaluation
  (the default, ``train=False``).
- ``cache`` holds what the backward pass needs (inputs, pre-activations, masks).
- ``backward`` takes ``dy = dL/dy`` and returns ``dL/dparams`` and ``dx = dL/dx``:
  one step of the chain rule.
- ``takes_tokens`` (default False) marks a layer whose inputs are integer
  tokens (the embedding, the GPT body): a model that starts with one keeps its
  inputs integers, and the layer's backward returns ``dx = None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

Shape = tuple[int, ...]
Params = Any
State = Any
Cache = Any


class Layer(NamedTuple):
    """A layer: a name, its three pure functions (see the module docstring),
    and whether its inputs are integer tokens."""

    name: str
    init: Callable[[jax.Array, Shape, Any], tuple[Shape, Params, State]]
    forward: Callable[..., tuple[jax.Array, Cache, State]]
    backward: Callable[[Params, Cache, jax.Array], tuple[Params, jax.Array]]
    takes_tokens: bool = False


def check_in_shape(layer_name: str, in_shape: Shape, ndim: int, what: str) -> None:
    """Raise a ValueError unless ``in_shape`` (per example) has ``ndim`` axes."""
    if len(in_shape) != ndim:
        raise ValueError(
            f"{layer_name} expects inputs of per-example shape {what}; "
            f"got per-example shape {tuple(in_shape)}"
        )
