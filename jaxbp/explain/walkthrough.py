"""The trace as the five steps of the algorithm, one section each: the network,
forward pass, loss, backward pass (output layer to input), update, and repeat
(the loss over many steps, when asked).

Unit by unit (:mod:`jaxbp.explain.units`) when no layer has more than
``max_units`` units, else layer by layer with matrices
(:mod:`jaxbp.explain.matrices`), at most ``max_units`` rows and columns shown.
"""

from __future__ import annotations

import numpy as np

from jaxbp.checks import check_int
from jaxbp.explain import matrices, units
from jaxbp.explain.formulas import Section, factor, loss_formula, num, per_example
from jaxbp.explain.names import layer_title, unit_names
from jaxbp.explain.steps import LossCurve
from jaxbp.explain.trace import StepTrace


def sections(
    trace: StepTrace, *, max_units: int = 4, curve: LossCurve | None = None
) -> list[Section]:
    """The walk-through of ``trace`` (and of ``curve``, the loss over many steps)."""
    check_int("max_units", max_units, 1)
    per_unit = max(trace.sizes) <= max_units
    names = units.Names(trace) if per_unit else None
    count = len(trace.layers)
    result = [Section("1. The network", tuple(_network_lines(trace, names, max_units)))]
    for i in range(count):
        lines = (
            units.forward_lines(trace, i, names)
            if per_unit
            else matrices.forward_lines(trace, i, max_units)
        )
        title = f"2. Forward pass: {layer_title(i + 1, count)}"
        result.append(Section(title, tuple(lines)))
    result.append(Section("3. Loss", tuple(_loss_lines(trace, names))))
    for i in reversed(range(count)):
        if per_unit:
            lines = units.backward_lines(trace, i, names)
        else:
            lines = matrices.backward_lines(trace, i, max_units)
        title = f"4. Backward pass: {layer_title(i + 1, count)}"
        result.append(Section(title, tuple(lines)))
    result.append(Section("5. Update", tuple(_update_lines(trace, names, max_units))))
    if curve is not None:
        result.append(_repeat_section(trace, curve, max_units))
    return result


def _network_lines(trace, names, max_units) -> list[str]:
    lines = (
        units.network_lines(trace, names)
        if names
        else matrices.network_lines(trace, max_units)
    )
    formula = loss_formula(trace.loss, trace.x.shape[0])
    lines.append(f"loss:    E = {formula} (jaxbp's {trace.loss!r})")
    frozen = "" if trace.update_biases else "; biases not updated (as in the post)"
    lines.append(
        f"update:  w⁺ = w − η · ∂E/∂w, η = {num(trace.learning_rate)} "
        f"(jaxbp.optim.sgd){frozen}"
    )
    lines.append("every number: float64, from the model's own layers")
    return lines


def _loss_lines(trace: StepTrace, names) -> list[str]:
    outputs = unit_names(trace.sizes)[-1]
    if trace.loss_terms is None or names is None:
        return [f"E_total = {trace.loss}(out, target) = {num(trace.value)}"]
    out, batch, lines = trace.layers[-1].out, trace.x.shape[0], []
    for k, unit in enumerate(outputs):
        target = factor(per_example(trace.target[:, k]))
        if batch == 1:
            formula = f"½(target_{unit} − out_{unit})²"
        else:
            formula = f"½ · mean_n (target_{unit} − out_{unit})²"
        prefix = "½(" if batch == 1 else "½ · mean_n ("
        lines.append(
            f"E_{unit} = {formula} = {prefix}{target} − {per_example(out[:, k])})² = "
            f"{num(trace.loss_terms[k])}"
        )
    symbols = " + ".join(f"E_{u}" for u in outputs)
    values = " + ".join(num(v) for v in trace.loss_terms)
    values = f"{values} = " if len(outputs) > 1 else ""
    lines.append(f"E_total = {symbols} = {values}{num(trace.value)}")
    return lines


def _update_lines(trace, names, max_units) -> list[str]:
    lines = (
        units.update_lines(trace, names)
        if names
        else matrices.update_lines(trace, max_units)
    )
    if not trace.update_biases and any(t.b is not None for t in trace.layers):
        lines.append("biases: not updated (as in the post)")
    lines.append(
        f"E_total after the update = {num(trace.value_after)} "
        f"(before: {num(trace.value)})"
    )
    return lines


def table_steps(steps: int) -> list[int]:
    """The steps the repeat table shows: 0 … 5, the powers of ten, and the last."""
    shown = set(range(min(steps, 5) + 1)) | {steps}
    shown |= {10**p for p in range(1, 10) if 10**p < steps}
    return sorted(shown)


def _repeat_section(trace: StepTrace, curve: LossCurve, max_units: int) -> Section:
    steps = len(curve.losses) - 1
    rows = tuple((str(s), num(curve.losses[s])) for s in table_steps(steps))
    outputs = unit_names(trace.sizes)[-1][:max_units]
    out = np.asarray(curve.output)
    values = ", ".join(
        f"out_{u} = {per_example(out[:, k])}" for k, u in enumerate(outputs)
    )
    lines = (
        f"{steps} steps of w⁺ = w − η · ∂E/∂w, each by jaxbp.loss_and_grad",
        f"after {steps} steps: E_total = {num(curve.losses[-1])}, {values}",
    )
    return Section(f"6. Repeat: {steps} steps", lines, (("step", "E_total"), rows))
