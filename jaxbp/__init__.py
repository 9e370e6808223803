"""jaxbp: backpropagation by hand in JAX, checked against jax.grad.

::

    model = jaxbp.mlp([64, 128, 10], activation="relu")
    params = model.init(jax.random.key(0))
    value, grads = jaxbp.loss_and_grad(model, params, x, y, loss="cross_entropy")
    report = jaxbp.check_grads(model, params, x, y, loss="cross_entropy")
"""

from jaxbp import activations, initializers, layers, losses
from jaxbp.backprop import LossGrad, forward_backward, loss, loss_and_grad
from jaxbp.gradcheck import GradCheckReport, check_grads
from jaxbp.model import Model, mlp, sequential

__version__ = "0.1.0"

__all__ = [
    "GradCheckReport",
    "LossGrad",
    "Model",
    "activations",
    "check_grads",
    "forward_backward",
    "initializers",
    "layers",
    "loss",
    "loss_and_grad",
    "losses",
    "mlp",
    "sequential",
]
