"""Repeat: the loss over many gradient-descent steps (the post's "after 10,000 steps").

Each step is ``jaxbp.loss_and_grad`` (the hand-written backward pass) and the
update of :mod:`jaxbp.explain.update` (``jaxbp.optim.sgd``, biases frozen unless
asked), all steps in one compiled ``lax.scan``, in float64.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from jaxbp import backprop, optim
from jaxbp.checks import check_int
from jaxbp.explain.trace import as_float64, dense_groups
from jaxbp.explain.update import check_learning_rate, optimizer


class LossCurve(NamedTuple):
    """``losses[k]``: the loss after k updates (k = 0 … steps); ``params`` and
    ``output``: the parameters and the model's output after the last one."""

    losses: np.ndarray
    params: Any
    output: np.ndarray


def loss_curve(
    model,
    params,
    x,
    y,
    *,
    steps: int,
    loss: str = "mse",
    learning_rate: float = 0.5,
    update_biases: bool = False,
) -> LossCurve:
    """Train ``model`` for ``steps`` full-batch gradient-descent steps on ``(x, y)``.

    The same update as :func:`jaxbp.explain.explain_step` (whose ``value_after``
    is ``losses[1]`` up to rounding: the steps here run compiled).
    """
    check_int("steps", steps, 1)
    learning_rate = check_learning_rate(learning_rate)
    dense_groups(model, params)
    with jax.enable_x64(True):
        model, params = as_float64(model, params)
        x, _, _, _ = backprop.prepare(model, params, x, y, loss, None)  # checks
        y = jax.numpy.asarray(y)
        tx = optimizer(params, learning_rate, update_biases=update_biases)

        def step(carry, _):
            params, state = carry
            value, grads = backprop.loss_and_grad(model, params, x, y, loss=loss)
            updates, state = tx.update(grads, state, params)
            return (optim.apply_updates(params, updates), state), value

        def descend(params):
            carry, values = jax.lax.scan(step, (params, tx.init(params)), length=steps)
            return values, carry[0]

        values, final = jax.jit(descend)(params)
        last = backprop.loss(model, final, x, y, loss=loss)
        return LossCurve(
            losses=np.append(np.asarray(values), float(last)),
            params=jax.tree.map(np.asarray, final),
            output=np.asarray(model.apply(final, x)),
        )
