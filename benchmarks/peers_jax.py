"""Plain JAX + optax, written the way a JAX user would: no jaxbp.

The MLP is a list of ``(w, b)`` arrays and a dozen-line loss; the gradient is
``jax.value_and_grad``; the optimizer ``optax.adam``; an epoch is one jitted
``jax.lax.scan`` of the train step over the epoch's batch indices (each step
gathers its batch from the training set on the device).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax


def logits(params, x):
    """The ReLU MLP ``params`` (a list of ``(w, b)``) applied to ``x``."""
    h = x
    for w, b in params[:-1]:
        h = jax.nn.relu(h @ w + b)
    w, b = params[-1]
    return h @ w + b


def loss_fn(params, x, y):
    """Mean softmax cross-entropy of the MLP on ``(x, y)``."""
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()


@jax.jit
def predict(params, x):
    """The predicted classes."""
    return jnp.argmax(logits(params, x), axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def train_epoch(optimizer, params, opt_state, x, y, indices):
    """``lax.scan`` of the Adam step over the rows of ``indices``:
    ``(params, opt_state, losses)``."""

    def step(carry, index):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params, x[index], y[index])
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), indices)
    return params, opt_state, losses


class Trainer:
    """The parameters, optax's Adam state and the training set on the device."""

    def __init__(self, problem):
        self.params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in problem.weights]
        self.optimizer = optax.adam(problem.learning_rate)
        self.opt_state = self.optimizer.init(self.params)
        self.x, self.y = jnp.asarray(problem.x_train), jnp.asarray(problem.y_train)

    def epoch(self, indices):
        """Train on the ``(steps, batch)`` ``indices``; the steps' losses."""
        self.params, self.opt_state, losses = train_epoch(
            self.optimizer, self.params, self.opt_state, self.x, self.y, indices
        )
        return losses

    def accuracy(self, x, y) -> float:
        return float(np.mean(np.asarray(predict(self.params, x)) == y))


def make_trainer(problem) -> Trainer:
    return Trainer(problem)


def gradient_call(weights, x, y):
    """A call of the jitted ``jax.value_and_grad(loss_fn)``: ``(loss, grads)``."""
    params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in weights]
    fn = jax.jit(jax.value_and_grad(loss_fn))
    return functools.partial(fn, params, jnp.asarray(x), jnp.asarray(y))
