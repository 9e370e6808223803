"""Gradient-flow diagnostics: how the backpropagated error and the gradients change
from layer to layer (vanishing and exploding gradients, Nielsen ch. 5).

``gradient_flow`` runs the model's layers one by one, forward and then
backward (hand-written, no autodiff), and records for each layer l:

- ``delta_norm``: ‖δ_l‖ = ‖∂L/∂(output of layer l)‖, the dy that arrives at
  layer l in the backward pass (Frobenius norm over the batch). For a dense
  layer this is Nielsen's δ^l = ∂C/∂z^l;
- ``weight_grad_norm``: ‖dW‖ over the layer's weight leaves (parameters whose
  name starts with ``w``: dense and conv ``w``, RNN ``w_x`` and ``w_h``);
  ``bias_grad_norm``: ‖db‖ (leaf ``b``), the "speed of learning" of the
  layer's biases; ``param_grad_norm``: ‖∂L/∂θ_l‖ over all its parameters.
  ``None`` when the layer has no such parameters;
- statistics of the layer's output y: ``mean``, ``std``; for sigmoid/tanh-type
  outputs (layers ``sigmoid``, ``tanh``, ``rnn``) ``saturated``, the fraction of
  units within 1% of a bound (sigmoid: y < 0.01 or y > 0.99; tanh: |y| > 0.99);
  for ``relu`` layers ``dead``, the fraction of exact zeros (y == 0).
  ``None`` where it does not apply.

``print(flow_report(records))`` prints them as a table, one row a layer, in
``check_grads``' style, with the first/last ratio of ‖dW‖ as its summary.

Every number is a JAX array and the records are pytrees whose layer index and
name are static, so ``gradient_flow`` works under ``jit`` and ``vmap`` (e.g.
over seeds or depths' worth of parameters at once).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from jaxbp.backprop import prepare
from jaxbp.layers import split_key
from jaxbp.model import Model

#: Output bounds of saturating layers: name -> (low, high).
SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "rnn": (-1.0, 1.0)}
#: Layers whose exact zeros are dead units.
RECTIFYING = ("relu",)
#: A unit is saturated within this fraction of its range of a bound.
SATURATION_MARGIN = 0.01


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LayerFlow:
    """One layer's gradient-flow record (see the module docstring)."""

    index: int = dataclasses.field(metadata={"static": True})
    name: str = dataclasses.field(metadata={"static": True})
    delta_norm: Any
    weight_grad_norm: Any
    bias_grad_norm: Any
    param_grad_norm: Any
    mean: Any
    std: Any
    saturated: Any
    dead: Any


def _norm(leaves):
    """sqrt(Σ over leaves of Σ entries²), or None for no leaves."""
    if not leaves:
        return None
    return jnp.sqrt(sum(jnp.sum(jnp.square(leaf)) for leaf in leaves))


def _leaves_named(tree, predicate):
    """The leaves of ``tree`` whose dict key (at any depth) satisfies ``predicate``."""
    chosen = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        names = [p.key for p in path if isinstance(p, jax.tree_util.DictKey)]
        if names and predicate(str(names[-1])):
            chosen.append(leaf)
    return chosen


def _saturated_fraction(name, y):
    if name not in SATURATING:
        return None
    low, high = SATURATING[name]
    margin = SATURATION_MARGIN * (high - low)
    return jnp.mean(((y < low + margin) | (y > high - margin)).astype(y.dtype))


def _dead_fraction(name, y):
    if name not in RECTIFYING:
        return None
    return jnp.mean((y == 0).astype(y.dtype))


def gradient_flow(
    model: Model,
    params,
    x,
    y,
    *,
    loss: str = "cross_entropy",
    state=None,
    key=None,
    train: bool = True,
) -> list[LayerFlow]:
    """Per-layer gradient-flow records of one forward/backward pass, input to output.

    The forward pass runs ``model.layers`` one by one (the same keys as
    ``model.forward``), the backward pass runs their hand-written ``backward``
    in reverse; no JAX differentiation. Returns one :class:`LayerFlow` per
    layer, ``records[l].index == l``.
    """
    x, target, loss_fn, state = prepare(model, params, x, y, loss, state)
    layers = model.layers
    outputs, caches = [], []
    h = x
    for layer, p, s, k in zip(layers, params, state, split_key(key, len(layers))):
        h, cache, _ = layer.forward(p, s, h, key=k, train=train)
        outputs.append(h)
        caches.append(cache)

    records: list[Any] = [None] * len(layers)
    dy = loss_fn.backward(h, target)
    for i in reversed(range(len(layers))):
        layer, out = layers[i], outputs[i]
        grads, dx = layer.backward(params[i], caches[i], dy)
        records[i] = LayerFlow(
            index=i,
            name=layer.name,
            delta_norm=_norm([dy]),
            weight_grad_norm=_norm(_leaves_named(grads, lambda n: n.startswith("w"))),
            bias_grad_norm=_norm(_leaves_named(grads, lambda n: n == "b")),
            param_grad_norm=_norm(jax.tree.leaves(grads)),
            mean=jnp.mean(out),
            std=jnp.std(out),
            saturated=_saturated_fraction(layer.name, out),
            dead=_dead_fraction(layer.name, out),
        )
        dy = dx
    return records


@dataclasses.dataclass(frozen=True)
class FlowReport:
    """Concrete gradient-flow records; ``str()`` is a table in ``check_grads``'
    style (one row a layer, a rule under the header) and a summary line."""

    layers: tuple[LayerFlow, ...]

    @property
    def first_last_ratio(self) -> float | None:
        """‖dW‖ of the first layer with weights over that of the last (< 1:
        the early layers learn slower, vanishing; > 1: exploding); None with
        fewer than two such layers."""
        norms = [r.weight_grad_norm for r in self.layers]
        norms = [float(n) for n in norms if n is not None]
        if len(norms) < 2:
            return None
        return norms[0] / norms[-1] if norms[-1] else float("inf")

    def __str__(self) -> str:
        header = ["layer", "‖δ‖", "‖dW‖", "‖db‖", "‖dθ‖"]
        header += ["mean", "std", "saturated", "dead"]
        rows = [header] + [
            [f"{r.index}.{r.name}"]
            + [
                _cell(v, ".2e")
                for v in (r.delta_norm, r.weight_grad_norm, r.bias_grad_norm)
                + (r.param_grad_norm,)
            ]
            + [_cell(v, ".3g") for v in (r.mean, r.std, r.saturated, r.dead)]
            for r in self.layers
        ]
        widths = [max(len(row[j]) for row in rows) for j in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join([*lines, self._summary()])

    def _summary(self) -> str:
        ratio = self.first_last_ratio
        if ratio is None:
            return f"{len(self.layers)} layers"
        return (
            f"{len(self.layers)} layers; ‖dW‖ first/last layer with weights "
            f"{ratio:.3g} (< 1: the early layers learn slower)"
        )


def _cell(value, spec: str) -> str:
    return "-" if value is None else format(float(value), spec)


def flow_report(records) -> FlowReport:
    """A :class:`FlowReport` of ``gradient_flow``'s records (concrete arrays:
    call it outside ``jit``; ``print(flow_report(records))`` shows the table)."""
    return FlowReport(tuple(records))


def format_flow(records: list[LayerFlow]) -> str:
    """The text table of gradient-flow records: ``str(flow_report(records))``."""
    return str(flow_report(records))
