"""The loss of a model and its gradient: by the hand-written backward pass or by autodiff.

``backprop="manual"`` runs the forward pass (keeping each layer's cache), takes
the loss's gradient with respect to the model output, and threads it back
through every layer's ``backward``: the chain rule, output to input. It calls
no JAX differentiation at all. ``backprop="autodiff"`` asks ``jax.value_and_grad``
for the same numbers, so the two can be compared on any model.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxbp import losses
from jaxbp.checks import choose
from jaxbp.compilation import host_array, to_device
from jaxbp.model import Model

BACKPROPS = ("manual", "autodiff")


class LossGrad(NamedTuple):
    """Everything one forward/backward pass gives: loss value, gradients with the
    tree structure of params, the layers' new state and the model output."""

    value: jax.Array
    grads: Any
    state: Any
    output: jax.Array


def prepare(model: Model, params, x, y, loss: str, state):
    """Check and convert the inputs: (x, targets, loss functions, state)."""
    if not isinstance(model, Model):
        raise TypeError(f"expected a jaxbp Model; got {type(model).__name__}")
    loss_fn = losses.get(loss)
    model.check_params(params)
    x = model.check_input(x)
    host_y = host_array(y)
    y = jnp.asarray(y) if host_y is None else to_device(host_y)
    if y.ndim == 0 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"x and y must hold the same number of examples; x has {x.shape[0]}, "
            f"y has shape {y.shape}"
        )
    out_spec = jax.ShapeDtypeStruct((x.shape[0], *model.out_shape), model.dtype)
    target = loss_fn.prepare(out_spec, y)
    if state is None:
        state = model.init_state()
    return x, target, loss_fn, state


def manual_loss_and_grad(model, loss_fn, params, state, x, target, *, key, train):
    """Forward, loss gradient dL/dout, then the model's backward pass."""
    out, caches, new_state = model.forward(params, state, x, key=key, train=train)
    value = loss_fn.value(out, target)
    dout = loss_fn.backward(out, target)
    grads, _ = model.backward(params, caches, dout)
    return LossGrad(value, grads, new_state, out)


def autodiff_loss_and_grad(model, loss_fn, params, state, x, target, *, key, train):
    """The same numbers from ``jax.value_and_grad`` of the forward pass and loss."""

    def value_of(p):
        out, _, new_state = model.forward(p, state, x, key=key, train=train)
        return loss_fn.value(out, target), (new_state, out)

    (value, (new_state, out)), grads = jax.value_and_grad(value_of, has_aux=True)(
        params
    )
    return LossGrad(value, grads, new_state, out)


def forward_backward(
    model: Model,
    params,
    x,
    y,
    *,
    loss: str = "cross_entropy",
    backprop: str = "manual",
    state=None,
    key=None,
    train: bool = True,
) -> LossGrad:
    """Loss, gradients, new state and output in one pass (what a train step needs)."""
    choose(backprop, BACKPROPS, "backprop")
    x, target, loss_fn, state = prepare(model, params, x, y, loss, state)
    run = manual_loss_and_grad if backprop == "manual" else autodiff_loss_and_grad
    return run(model, loss_fn, params, state, x, target, key=key, train=train)


def loss_and_grad(
    model: Model,
    params,
    x,
    y,
    *,
    loss: str = "cross_entropy",
    backprop: str = "manual",
    state=None,
    key=None,
    train: bool = True,
):
    """(value, grads): the batch-averaged loss and its gradient for every parameter.

    ``backprop="manual"`` (default) uses the hand-written backward pass and no
    JAX differentiation; ``"autodiff"`` uses ``jax.value_and_grad``. ``grads`` has
    exactly the tree structure of ``params``. ``state``/``key``/``train`` are for
    models with batch norm or dropout (training mode by default).
    """
    result = forward_backward(
        model,
        params,
        x,
        y,
        loss=loss,
        backprop=backprop,
        state=state,
        key=key,
        train=train,
    )
    return result.value, result.grads


def loss(
    model: Model,
    params,
    x,
    y,
    *,
    loss: str = "cross_entropy",
    state=None,
    key=None,
    train: bool = True,
):
    """The batch-averaged loss of ``model`` on ``(x, y)``: the forward pass only."""
    loss_name = loss
    x, target, loss_fn, state = prepare(model, params, x, y, loss_name, state)
    out, _, _ = model.forward(params, state, x, key=key, train=train)
    return loss_fn.value(out, target)
