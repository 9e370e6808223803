"""Formula text: numbers as a hand calculation writes them, and each activation's
and loss's formula with the numbers substituted.

These strings only SHOW the maths; every value printed after the last ``=`` of
a line is a number of the trace, computed by the model's own layers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Section(NamedTuple):
    """One step of the algorithm: a title, formula lines, and an optional table
    (header, rows) printed after them."""

    title: str
    lines: tuple[str, ...]
    table: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]] | None = None


def num(value) -> str:
    """Up to 9 decimals with trailing zeros dropped (``0.35891648``), or
    scientific notation below 1e-4 and from 1e6 (``3.51018778e-05``)."""
    v = float(value)
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    if 1e-4 <= abs(v) < 1e6:
        return f"{v:.9f}".rstrip("0").rstrip(".")
    mantissa, exponent = f"{v:.8e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"


def vector(values, limit: int) -> str:
    """``[a, b, c, …]`` with at most ``limit`` entries (and how many in all)."""
    values = np.ravel(values)
    shown = ", ".join(num(v) for v in values[:limit])
    more = f", … ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def per_example(values, limit: int = 8) -> str:
    """A quantity over the batch: the number for one example, else a vector."""
    values = np.ravel(values)
    return num(values[0]) if values.size == 1 else vector(values, limit)


def factor(text: str) -> str:
    """A substituted number inside a formula, in parentheses when negative."""
    return f"({text})" if text.startswith("-") else text


# ------------------------------------------------------------- activations

#: out = f(net): the formula, ``{}`` standing for net (a name or a number).
FORWARD = {
    "identity": "{}",
    "sigmoid": "1/(1 + e^(−{}))",
    "tanh": "tanh({})",
    "relu": "max(0, {})",
}

#: ∂out/∂net = f'(net) in terms of out or net (shown, not substituted, except
#: for the forms in ``derivative_substituted``).
DERIVATIVE = {
    "identity": "1",
    "sigmoid": "{out}(1 − {out})",
    "tanh": "1 − {out}²",
    "relu": "1 if {net} > 0 else 0",
    "leaky_relu": "1 if {net} > 0 else 0.01",
    "elu": "1 if {net} > 0 else {out} + 1",
    "softplus": "σ({net})",
    "gelu": "Φ({net}) + {net}·φ({net})",
    "gelu_tanh": "½(1 + tanh u) + ½{net}(1 − tanh² u)·√(2/π)(1 + 3·0.044715·{net}²), "
    "u = √(2/π)({net} + 0.044715·{net}³)",
    "silu": "σ({net})(1 + {net}(1 − σ({net})))",
}


def activation_formula(name: str, net: str) -> str:
    """out = f(net) as text, e.g. ``1/(1 + e^(−net_h1))``."""
    return FORWARD.get(name, name + "({})").format(factor(net))


def derivative_formula(name: str, out: str, net: str) -> str:
    """f'(net) as text, e.g. ``out_h1(1 − out_h1)``."""
    return DERIVATIVE[name].format(out=out, net=net)


def derivative_substituted(name: str, out: str) -> str | None:
    """f'(net) with the number ``out`` substituted, for the activations whose
    derivative is written with out alone (sigmoid, tanh); else None."""
    if name == "sigmoid":
        return f"{out} × (1 − {out})"
    if name == "tanh":
        return f"1 − {factor(out)}²"
    return None


# ------------------------------------------------------------- losses

#: The loss over a batch of B examples (all jaxbp losses average over the batch).
LOSS = {
    "mse": "½ · mean_n Σ (target − out)²",
    "cross_entropy": "mean_n −Σ target · log softmax(out)",
    "binary_cross_entropy": "mean_n Σ [log(1 + e^out) − target · out]",
    "hinge": "mean_n max(0, 1 − t · out) (C outputs: Σ_{j≠y} max(0, out_j − out_y + 1))",
}

#: ∂E/∂out_u as text, ``{u}`` the unit and ``{B}`` the batch size.
LOSS_DERIVATIVE = {
    "mse": "(out_{u} − target_{u}) / {B}",
    "cross_entropy": "(softmax(out)_{u} · Σ target − target_{u}) / {B}",
    "binary_cross_entropy": "(σ(out_{u}) − target_{u}) / {B}",
    "hinge": "the hinge's backward / {B}",
}


def loss_formula(loss: str, batch: int) -> str:
    """E as text; with one example, mse is the post's Σ ½(target − out)²."""
    if loss == "mse" and batch == 1:
        return "Σ ½(target − out)²"
    return LOSS[loss]


def loss_derivative_formula(loss: str, unit: str, batch: int) -> str:
    """∂E/∂out_u as text (mse with one example: ``out_o1 − target_o1``)."""
    text = LOSS_DERIVATIVE[loss].format(u=unit, B=batch)
    if batch == 1:
        text = text.removesuffix(" / 1")
        if text.startswith("(") and text.endswith(")"):
            text = text[1:-1]
    return text
