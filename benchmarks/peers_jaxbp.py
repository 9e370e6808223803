"""jaxbp's contenders: the train step scanned over an epoch, ``fit``, and the gradient.

- :func:`make_trainer`: ``jaxbp.train.make_step`` (manual backprop or
  autodiff) run by ``jaxbp.train.run_steps`` under one ``jax.jit``: a whole
  epoch is one ``lax.scan`` program, fed the epoch's batch indices;
- :func:`fit_call`: ``jaxbp.train.fit`` for a number of epochs (its compiled
  epoch program is cached across calls with the same model and optimizer);
- :func:`fit_run`: what a user's ``fit`` script does, from loading the digits
  to the test accuracy;
- :func:`gradient_calls`: ``jaxbp.loss_and_grad``, manual and autodiff.

The initial weights are those of :mod:`benchmarks.peers_problem` (which are
jaxbp's own), put into the model's parameter tree.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

import jaxbp
from benchmarks.problems import loss_and_grad_fn
from jaxbp import optim
from jaxbp.backprop import prepare
from jaxbp.train import TrainState, evaluate, fit, make_step, run_steps


def jaxbp_params(model, weights):
    """``model``'s parameter tree with its dense layers set to ``weights``
    (``(w, b)`` pairs in order; the other layers keep their ``()``)."""
    pairs = iter(weights)
    params = []
    for p in model.init(jax.random.key(0)):
        if p == ():
            params.append(p)
            continue
        w, b = next(pairs)
        params.append({"w": jnp.asarray(w), "b": jnp.asarray(b)})
    return tuple(params)


class ScanTrainer:
    """An epoch as one jitted ``run_steps`` (a ``lax.scan`` of the train step)."""

    def __init__(self, problem, backprop: str = "manual"):
        self.model = jaxbp.mlp(list(problem.sizes))
        optimizer = optim.adam(problem.learning_rate)
        params = jaxbp_params(self.model, problem.weights)
        state = self.model.init_state()
        x, t, _, state = prepare(
            self.model, params, problem.x_train, problem.y_train, "cross_entropy", state
        )
        self.x, self.t = x, t
        self.state = TrainState(params, state, optimizer.init(params))
        step = make_step(self.model, optimizer=optimizer, backprop=backprop)
        self.run = jax.jit(functools.partial(run_steps, step))
        # one key per step (no layer of this model draws from it)
        self.keys = jax.random.split(jax.random.key(0), problem.indices.shape[1])

    def epoch(self, indices):
        """Train on the ``(steps, batch)`` ``indices``; the steps' losses."""
        self.state, losses = self.run(self.state, self.x, self.t, indices, self.keys)
        return losses

    def accuracy(self, x, y) -> float:
        params, state, _ = self.state
        return evaluate(self.model, params, (x, y), state=state)[1]


def make_trainer(problem, backprop: str = "manual") -> ScanTrainer:
    """jaxbp's scanned epoch with ``backprop`` ("manual" or "autodiff")."""
    return ScanTrainer(problem, backprop)


def fit_call(problem, epochs: int):
    """A call of ``fit(epochs=epochs, seed=0)`` on the problem's training set
    (the same model and optimizer objects every time, so it compiles once);
    returns its history."""
    model = jaxbp.mlp(list(problem.sizes))
    optimizer = optim.adam(problem.learning_rate)
    train = (problem.x_train, problem.y_train)

    def call():
        return fit(
            model,
            train,
            optimizer=optimizer,
            batch_size=problem.batch_size,
            epochs=epochs,
            seed=0,
        ).history

    return call


def fit_run(epochs: int, batch_size: int, learning_rate: float) -> float:
    """A user's ``fit`` script: the digits, the MLP, ``epochs`` epochs of Adam,
    the test accuracy."""
    from benchmarks.peers_problem import SIZES
    from jaxbp import data

    digits = data.load("digits")
    model = jaxbp.mlp(list(SIZES))
    result = fit(
        model,
        digits.train,
        optimizer=optim.adam(learning_rate),
        batch_size=batch_size,
        epochs=epochs,
        seed=0,
    )
    return evaluate(model, result.params, digits.test, state=result.state)[1]


def gradient_calls(weights, x, y) -> dict:
    """``{"manual": call, "autodiff": call}``: jitted ``jaxbp.loss_and_grad``
    of the MLP with ``weights`` on ``(x, y)``; each call gives ``(loss, grads)``."""
    sizes = [weights[0][0].shape[0], *(w.shape[1] for w, _ in weights)]
    model = jaxbp.mlp(sizes)
    params = jaxbp_params(model, weights)
    x, y = jnp.asarray(x), jnp.asarray(y)
    return {
        backprop: functools.partial(
            jax.jit(loss_and_grad_fn(model, backprop)), params, x, y
        )
        for backprop in ("manual", "autodiff")
    }
