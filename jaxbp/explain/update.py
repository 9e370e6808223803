"""The gradient-descent update of the walk-through: ``jaxbp.optim.sgd``, biases
frozen unless asked.

    w⁺ = w − η · ∂E/∂w

The post leaves its biases where they are; ``update_biases=True`` updates them
by the same rule. Frozen biases get an update of 0 (``masked(scale(0))`` after
SGD), so they keep their value exactly.
"""

from __future__ import annotations

import jax

from jaxbp import optim
from jaxbp.checks import is_finite_number


def check_learning_rate(learning_rate) -> float:
    """``learning_rate`` as a float; a ValueError unless it is a finite number > 0."""
    if not (is_finite_number(learning_rate) and learning_rate > 0):
        raise ValueError(
            f"learning_rate must be a finite number > 0; got {learning_rate!r}"
        )
    return float(learning_rate)


def bias_mask(params):
    """True at every dense layer's bias ``b``, False elsewhere (params' structure)."""

    def mask_layer(layer_params):
        if isinstance(layer_params, dict):
            return {name: name == "b" for name in layer_params}
        return jax.tree.map(lambda _: False, layer_params)

    return tuple(mask_layer(p) for p in params)


def optimizer(params, learning_rate: float, *, update_biases: bool = False):
    """SGD with ``learning_rate``; with ``update_biases=False`` the biases' updates
    are 0 (the post's walk-through updates the weights only)."""
    sgd = optim.sgd(check_learning_rate(learning_rate))
    if update_biases:
        return sgd
    return optim.chain(sgd, optim.masked(optim.scale(0.0), bias_mask(params)))


def sgd_step(tx, params, grads):
    """The parameters after one update of ``tx`` (from its initial state)."""
    updates, _ = tx.update(grads, tx.init(params), params)
    return optim.apply_updates(params, updates)
