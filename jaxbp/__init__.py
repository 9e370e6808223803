"""jaxbp: backpropagation by hand in JAX, checked against jax.grad.

::

    model = jaxbp.mlp([64, 128, 10], activation="relu")
    params = model.init(jax.random.key(0))
    value, grads = jaxbp.loss_and_grad(model, params, x, y, loss="cross_entropy")
    report = jaxbp.check_grads(model, params, x, y, loss="cross_entropy")

``import jaxbp`` loads the core (layers, models, backprop, gradient checking);
the layers above it (``jaxbp.optim``, ``jaxbp.train``, ``jaxbp.data``,
``jaxbp.checkpoint``) are imported on first use, so the core never depends
on them, not even through this file.
"""

import importlib

from jaxbp import (
    activations,
    bridge,
    diagnostics,
    gradcheck,
    initializers,
    layers,
    losses,
    remat,
)
from jaxbp.backprop import LossGrad, forward_backward, loss, loss_and_grad
from jaxbp.bridge import as_jax_function
from jaxbp.diagnostics import LayerFlow, gradient_flow
from jaxbp.gradcheck import GradCheckReport, check_grads
from jaxbp.model import Model, cnn, mlp, sequential

__version__ = "0.1.0"

#: Subpackages above the core, imported when first used (``jaxbp.train.fit``).
_LAZY_SUBMODULES = ("checkpoint", "data", "explain", "optim", "train")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"jaxbp.{name}")
    raise AttributeError(f"module 'jaxbp' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY_SUBMODULES])


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
    "explain",
    "forward_backward",
    "gradcheck",
    "gradient_flow",
    "initializers",
    "layers",
    "loss",
    "loss_and_grad",
    "losses",
    "mlp",
    "optim",
    "remat",
    "sequential",
    "train",
]
