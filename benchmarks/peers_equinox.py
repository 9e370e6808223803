"""Equinox, as its documentation trains a model.

An ``eqx.Module`` holding ``eqx.nn.Linear`` layers (weight ``(n_out, n_in)``:
the problem's initial weights copied in transposed), applied to a batch with
``jax.vmap``; an ``eqx.filter_jit`` train step (``eqx.filter_value_and_grad``,
``optax.adam``, ``eqx.apply_updates``) called once per batch in a Python loop
fed NumPy batches, as a data loader feeds them.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax


class MLP(eqx.Module):
    """Dense layers with ReLU between them, initialised to ``weights``."""

    layers: list

    def __init__(self, weights):
        keys = jax.random.split(jax.random.key(0), len(weights))
        self.layers = [
            eqx.tree_at(
                lambda layer: (layer.weight, layer.bias),
                eqx.nn.Linear(*w.shape, key=k),
                (jnp.asarray(w.T), jnp.asarray(b)),
            )
            for (w, b), k in zip(weights, keys, strict=True)
        ]

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = jax.nn.relu(layer(x))
        return self.layers[-1](x)


def loss_fn(model, x, y):
    """Mean softmax cross-entropy over the batch."""
    logits = jax.vmap(model)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@eqx.filter_jit
def train_step(model, opt_state, optimizer, x, y):
    """One Adam step: ``(model, opt_state, loss before it)``."""
    loss, grads = eqx.filter_value_and_grad(loss_fn)(model, x, y)
    updates, opt_state = optimizer.update(
        grads, opt_state, eqx.filter(model, eqx.is_array)
    )
    return eqx.apply_updates(model, updates), opt_state, loss


@eqx.filter_jit
def predict(model, x):
    return jnp.argmax(jax.vmap(model)(x), axis=-1)


class Trainer:
    def __init__(self, problem):
        self.model = MLP(problem.weights)
        self.optimizer = optax.adam(problem.learning_rate)
        self.opt_state = self.optimizer.init(eqx.filter(self.model, eqx.is_array))
        self.x, self.y = problem.x_train, problem.y_train

    def epoch(self, indices):
        """One step per row of ``indices``; the steps' losses."""
        losses = []
        for i in np.asarray(indices):
            self.model, self.opt_state, loss = train_step(
                self.model, self.opt_state, self.optimizer, self.x[i], self.y[i]
            )
            losses.append(loss)
        return jnp.stack(losses)

    def accuracy(self, x, y) -> float:
        return float(np.mean(np.asarray(predict(self.model, x)) == y))


def make_trainer(problem) -> Trainer:
    return Trainer(problem)


def gradient_call(weights, x, y):
    """A call of ``eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))``:
    ``(loss, grads)``."""
    fn = eqx.filter_jit(eqx.filter_value_and_grad(loss_fn))
    return functools.partial(fn, MLP(weights), jnp.asarray(x), jnp.asarray(y))
