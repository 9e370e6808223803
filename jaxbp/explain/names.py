"""Names of a network's units, weights and biases, as a hand calculation writes them.

For the post's network (Mazur, "A Step by Step Backpropagation Example")::

    inputs i1 i2      hidden h1 h2      outputs o1 o2
    w1: i1→h1  w2: i2→h1  w3: i1→h2  w4: i2→h2
    w5: h1→o1  w6: h2→o1  w7: h1→o2  w8: h2→o2

The same scheme names any MLP (layer-indexed where one letter is not enough):

- units: inputs ``i1 i2 …``, outputs ``o1 o2 …``; one hidden layer ``h1 h2 …``,
  several ``h1_1 h1_2 …`` (hidden layer 1), ``h2_1 …`` (hidden layer 2), …;
- weights ``w1 w2 …`` numbered as in the post: layer by layer from the input,
  within a layer by destination unit, then by source unit. In the code's
  notation ``net = x W + b`` with ``W`` of shape (n_in, n_out), so the weight
  from source unit j to destination unit k is ``W[j, k]``;
- biases by their unit: ``b_h1`` is the bias of ``h1`` (the post's ``b1`` is
  the one value shared by ``b_h1`` and ``b_h2``);
- per-layer matrices ``W1 W2 …``, ``b1 b2 …``, ``net1 …``, ``out1 …``, with the
  input ``x`` (``out0``): layer l is the l-th dense layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def unit_names(sizes: Sequence[int]) -> tuple[tuple[str, ...], ...]:
    """Every layer's unit names, the input layer first."""
    hidden = len(sizes) - 2
    names = [tuple(f"i{j + 1}" for j in range(sizes[0]))]
    for layer, width in enumerate(sizes[1:-1], start=1):
        prefix = "h" if hidden == 1 else f"h{layer}_"
        names.append(tuple(f"{prefix}{j + 1}" for j in range(width)))
    names.append(tuple(f"o{j + 1}" for j in range(sizes[-1])))
    return tuple(names)


def weight_names(sizes: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Per dense layer, an (n_in, n_out) array of names: ``names[l][j, k]`` is
    the weight from source unit j to destination unit k (``w1``, ``w2``, …)."""
    names, first = [], 1
    for n_in, n_out in itertools.pairwise(sizes):
        numbers = first + np.arange(n_out)[None, :] * n_in + np.arange(n_in)[:, None]
        names.append(np.vectorize(lambda n: f"w{n}", otypes=[object])(numbers))
        first += n_in * n_out
    return tuple(names)


def bias_names(sizes: Sequence[int]) -> tuple[tuple[str, ...], ...]:
    """Per dense layer, the names of its biases (``b_h1``, ``b_o2``, …)."""
    return tuple(
        tuple(f"b_{unit}" for unit in units) for units in unit_names(sizes)[1:]
    )


def layer_title(layer: int, count: int) -> str:
    """'hidden layer', 'hidden layer 2' or 'output layer' (layer counts from 1)."""
    if layer == count:
        return "output layer"
    return "hidden layer" if count == 2 else f"hidden layer {layer}"
