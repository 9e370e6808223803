"""The walk-through layer by layer, with vectors and matrices, for networks too
wide to follow unit by unit (at most ``limit`` rows and columns shown)::

    net2 = out1 W2 + b2
    δ2 = ∂E/∂net2 = ∂E/∂out2 ⊙ ∂out2/∂net2
    ∂E/∂W2 = out1ᵀ δ2      ∂E/∂b2 = Σ_n δ2      ∂E/∂out1 = δ2 W2ᵀ

Layer l is the l-th dense layer; ``out0`` is the input ``x``. With one example
a layer's quantities are vectors; with several, matrices (examples × units).
"""

from __future__ import annotations

import numpy as np

from jaxbp.explain.formulas import (
    activation_formula,
    derivative_formula,
    loss_derivative_formula,
    num,
    vector,
)
from jaxbp.explain.trace import StepTrace


def show(name: str, values, limit: int) -> list[str]:
    """``name = [...]`` for a vector, or ``name =`` then one row per line."""
    values = np.asarray(values)
    if values.ndim == 2 and values.shape[0] == 1:
        values = values[0]
    if values.ndim < 2:
        return [f"{name} = {vector(values, limit)}"]
    rows = [f"    {vector(row, limit)}" for row in values[:limit]]
    if len(values) > limit:
        rows.append(f"    … ({len(values)} rows in all)")
    return [f"{name} ({values.shape[0]}×{values.shape[1]}) =", *rows]


def _source(layer: int) -> str:
    return "x" if layer == 1 else f"out{layer - 1}"


def network_lines(trace: StepTrace, limit: int) -> list[str]:
    sizes = " → ".join(map(str, trace.sizes))
    acts = ", ".join(t.activation or "none" for t in trace.layers)
    return [
        f"layers: {sizes} units (activations: {acts})",
        f"showing at most {limit} units of a layer (--max-units)",
        *show("x", trace.x, limit),
        *show("target", trace.target, limit),
    ]


def forward_lines(trace: StepTrace, i: int, limit: int) -> list[str]:
    t, n = trace.layers[i], i + 1
    bias = f" + b{n}" if t.b is not None else ""
    lines = [f"net{n} = {_source(n)} W{n}{bias}", *show(f"W{n}", t.w, limit)]
    if t.b is not None:
        lines += show(f"b{n}", t.b, limit)
    lines += show(f"net{n}", t.net, limit)
    if t.activation is None:
        return [*lines, f"out{n} = net{n} (no activation)"]
    formula = activation_formula(t.activation, f"net{n}")
    return lines + show(f"out{n} = {formula}", t.out, limit)


def backward_lines(trace: StepTrace, i: int, limit: int) -> list[str]:
    t, n = trace.layers[i], i + 1
    if i == len(trace.layers) - 1:
        upstream = loss_derivative_formula(trace.loss, "", t.x.shape[0])
        upstream = upstream.replace("_", "")
    else:
        upstream = f"δ{n + 1} W{n + 1}ᵀ"
    lines = show(f"∂E/∂out{n} = {upstream}", t.d_out, limit)
    if t.activation is not None:
        formula = derivative_formula(t.activation, f"out{n}", f"net{n}")
        lines += show(f"∂out{n}/∂net{n} = {formula}", t.local, limit)
        rule = f"∂E/∂out{n} ⊙ ∂out{n}/∂net{n}"
    else:
        rule = f"∂E/∂out{n}"
    lines += show(f"δ{n} = ∂E/∂net{n} = {rule}", t.delta, limit)
    lines += show(f"∂E/∂W{n} = {_source(n)}ᵀ δ{n}", t.d_w, limit)
    if t.b is not None:
        lines += show(f"∂E/∂b{n} = Σ_n δ{n}", t.d_b, limit)
    return lines


def update_lines(trace: StepTrace, limit: int) -> list[str]:
    eta, lines = num(trace.learning_rate), []
    for n, t in enumerate(trace.layers, start=1):
        lines += show(f"W{n}⁺ = W{n} − {eta} · ∂E/∂W{n}", t.w_new, limit)
        if t.b is not None and trace.update_biases:
            lines += show(f"b{n}⁺ = b{n} − {eta} · ∂E/∂b{n}", t.b_new, limit)
    return lines
