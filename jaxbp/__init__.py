"""jaxbp: backpropagation by hand in JAX, checked against jax.grad.

::

    model = jaxbp.mlp([64, 128, 10], activation="relu")
    params = model.init(jax.random.key(0))
    value, grads = jaxbp.loss_and_grad(model, params, x, y, loss="cross_entropy")
    report = jaxbp.check_grads(model, params, x, y, loss="cross_entropy")
"""

from jaxbp import (
    activations,
    bridge,
    checkpoint,
    data,
    diagnostics,
    initializers,
    layers,
    losses,
    optim,
    train,
)
from jaxbp.backprop import LossGrad, forward_backward, loss, loss_and_grad
from jaxbp.bridge import as_jax_function
from jaxbp.diagnostics import LayerFlow, gradient_flow
from jaxbp.gradcheck import GradCheckReport, check_grads
from jaxbp.model import Model, cnn, mlp, sequential

__version__ = "0.1.0"

__all__ = [
    "GradCheckReport",
    "LayerFlow",
    "LossGrad",
    "Model",
    "activations",
    "as_jax_function",
    "bridge",
    "check_grads",
    "checkpoint",
    "cnn",
    "data",
    "diagnostics",
    "forward_backward",
    "gradient_flow",
    "initializers",
    "layers",
    "loss",
    "loss_and_grad",
    "losses",
    "mlp",
    "optim",
    "sequential",
    "train",
]
