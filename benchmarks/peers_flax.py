"""Flax NNX, as the Flax documentation trains a model.

An ``nnx.Module`` of ``nnx.Linear`` layers (kernel ``(n_in, n_out)``, the
problem's initial weights copied in), ``nnx.Optimizer`` with ``optax.adam``,
and an ``nnx.jit`` train step (``nnx.value_and_grad``, ``optimizer.update``)
called once per batch in a Python loop fed NumPy batches, as a data loader
feeds them. Also the epoch as one ``lax.scan`` under ``jax.jit``, the model
and optimizer split into a graph definition and a state (``nnx.split``,
``nnx.merge`` in each step), the way Flax's performance guide avoids
``nnx.jit``'s per-call overhead.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


class MLP(nnx.Module):
    """Dense layers with ReLU between them, initialised to ``weights``."""

    def __init__(self, weights):
        rngs = nnx.Rngs(0)
        self.layers = nnx.List([nnx.Linear(*w.shape, rngs=rngs) for w, _ in weights])
        for layer, (w, b) in zip(self.layers, weights, strict=True):
            layer.kernel[...] = jnp.asarray(w)
            layer.bias[...] = jnp.asarray(b)

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)


def loss_fn(model, x, y):
    """Mean softmax cross-entropy."""
    logits = model(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def step(model, optimizer, x, y):
    """One Adam step in place; the loss before it."""
    loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
    optimizer.update(model, grads)
    return loss


train_step = nnx.jit(step)


@functools.partial(jax.jit, static_argnums=0)
def scan_epoch(graphdef, state, x, y, indices):
    """The steps as one ``lax.scan`` over ``indices``, the model and optimizer
    split into a graph and a state (``nnx.split``, merged in each step):
    ``(state, losses)``."""

    def body(state, index):
        model, optimizer = nnx.merge(graphdef, state)
        loss = step(model, optimizer, x[index], y[index])
        return nnx.state((model, optimizer)), loss

    return jax.lax.scan(body, state, indices)


@nnx.jit
def predict(model, x):
    return jnp.argmax(model(x), axis=-1)


def model_and_optimizer(problem):
    model = MLP(problem.weights)
    optimizer = nnx.Optimizer(model, optax.adam(problem.learning_rate), wrt=nnx.Param)
    return model, optimizer


class Trainer:
    """The documented way: an ``nnx.jit`` step per batch."""

    def __init__(self, problem):
        self.model, self.optimizer = model_and_optimizer(problem)
        self.x, self.y = problem.x_train, problem.y_train

    def epoch(self, indices):
        """One step per row of ``indices``; the steps' losses."""
        losses = [
            train_step(self.model, self.optimizer, self.x[i], self.y[i])
            for i in np.asarray(indices)
        ]
        return jnp.stack(losses)

    def accuracy(self, x, y) -> float:
        return float(np.mean(np.asarray(predict(self.model, x)) == y))


class ScanTrainer:
    """The epoch as one jitted ``lax.scan`` (Flax's functional API)."""

    def __init__(self, problem):
        self.graphdef, self.state = nnx.split(model_and_optimizer(problem))
        self.x, self.y = jnp.asarray(problem.x_train), jnp.asarray(problem.y_train)

    def epoch(self, indices):
        """Train on the ``(steps, batch)`` ``indices``; the steps' losses."""
        self.state, losses = scan_epoch(
            self.graphdef, self.state, self.x, self.y, indices
        )
        return losses

    def accuracy(self, x, y) -> float:
        model, _ = nnx.merge(self.graphdef, self.state)
        return float(np.mean(np.asarray(predict(model, x)) == y))


def make_trainer(problem, scan: bool = False) -> Trainer | ScanTrainer:
    """The ``nnx.jit`` loop, or with ``scan`` the scanned epoch."""
    return ScanTrainer(problem) if scan else Trainer(problem)


def gradient_call(weights, x, y):
    """A call of ``nnx.jit(nnx.value_and_grad(loss_fn))``: ``(loss, grads)``."""
    model = MLP(weights)
    fn = nnx.jit(nnx.value_and_grad(loss_fn))
    return functools.partial(fn, model, jnp.asarray(x), jnp.asarray(y))
