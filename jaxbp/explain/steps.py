"""Repeat: the loss over many gradient-descent steps (the post's "after 10,000 steps").

Each step is ``jaxbp.train.make_step``'s (the hand-written backward pass, then
the update of :mod:`jaxbp.explain.update`: ``jaxbp.optim.sgd``, biases frozen
unless asked), all steps in the training engine's one loop
(``jaxbp.train.run_steps``, full batch), compiled, in float64.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from jaxbp import backprop, train
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
        x, t, _, state = backprop.prepare(model, params, x, y, loss, None)
        tx = optimizer(params, learning_rate, update_biases=update_biases)
        step = train.make_step(model, loss=loss, optimizer=tx)
        keys = jax.random.split(jax.random.key(0), steps)  # unused: no random layers

        def descend(params):
            start = train.TrainState(params, state, tx.init(params))
            final, values = train.run_steps(step, start, x, t, None, keys)
            return values, final.params

        values, final = jax.jit(descend)(params)
        last = backprop.loss(model, final, x, t, loss=loss)
        return LossCurve(
            losses=np.append(np.asarray(values), float(last)),
            params=jax.tree.map(np.asarray, final),
            output=np.asarray(model.apply(final, x)),
        )
