"""Backpropagation step by step, with the numbers (``jaxbp explain``).

One training step of a small MLP, traced from the model's own layers: the
forward quantities (net = x W + b, out = f(net)), the loss, then layer by layer
from the output back the upstream gradient, the local derivative, each δ, each
∂E/∂W and ∂E/∂b, and the updated parameters. The default network is the worked
example of Matt Mazur's "A Step by Step Backpropagation Example" (2015)::

    from jaxbp import explain

    network = explain.parse_network(explain.MAZUR)
    model, params = explain.build(network)
    trace = explain.explain_step(model, params, network.inputs, network.targets,
                                 loss="mse", learning_rate=0.5)
    print(explain.to_text(explain.sections(trace)))

- :mod:`~jaxbp.explain.trace`: :func:`explain_step` and its :class:`StepTrace`;
- :mod:`~jaxbp.explain.steps`: :func:`loss_curve`, the loss over many steps;
- :mod:`~jaxbp.explain.network`: the weights file format and :data:`MAZUR`;
- :mod:`~jaxbp.explain.walkthrough`, :mod:`~jaxbp.explain.render`: the text,
  markdown and JSON renderings; :mod:`~jaxbp.explain.picture`: the PNG.
"""

from jaxbp.explain.formulas import Section
from jaxbp.explain.network import (
    MAZUR,
    Network,
    NetworkError,
    build,
    network_dict,
    parse_network,
    read_network,
)
from jaxbp.explain.picture import draw_network
from jaxbp.explain.render import to_markdown, to_text, trace_dict
from jaxbp.explain.steps import LossCurve, loss_curve
from jaxbp.explain.trace import LayerTrace, StepTrace, explain_step
from jaxbp.explain.walkthrough import sections

__all__ = [
    "MAZUR",
    "LayerTrace",
    "LossCurve",
    "Network",
    "NetworkError",
    "Section",
    "StepTrace",
    "build",
    "draw_network",
    "explain_step",
    "loss_curve",
    "network_dict",
    "parse_network",
    "read_network",
    "sections",
    "to_markdown",
    "to_text",
    "trace_dict",
]
