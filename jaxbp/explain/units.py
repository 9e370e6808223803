"""The walk-through unit by unit and weight by weight, for networks small enough
(the post's form)::

    net_h1 = w1·i1 + w2·i2 + b_h1 = 0.15 × 0.05 + 0.2 × 0.1 + 0.35 = 0.3775
    ∂E/∂w5 = ∂E/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5 = a × b × c = g

Each quantity of one unit is a number per example: one number for one example,
a vector ``[…]`` for several (then ∂E/∂w sums over them: ``Σ_n``).
"""

from __future__ import annotations

from jaxbp.explain.formulas import (
    activation_formula,
    derivative_formula,
    derivative_substituted,
    factor,
    loss_derivative_formula,
    num,
    per_example,
)
from jaxbp.explain.names import bias_names, unit_names, weight_names
from jaxbp.explain.trace import StepTrace


class Names:
    """The names of a trace's units, weights and biases (see ``names``)."""

    def __init__(self, trace: StepTrace):
        self.units = unit_names(trace.sizes)
        self.weights = weight_names(trace.sizes)
        self.biases = bias_names(trace.sizes)

    def source(self, layer: int, j: int) -> str:
        """What feeds layer ``layer`` (0-based) from unit j: ``i1`` or ``out_h1``."""
        unit = self.units[layer][j]
        return unit if layer == 0 else f"out_{unit}"


def network_lines(trace: StepTrace, names: Names) -> list[str]:
    """The inputs, targets, weights and biases, named."""
    first = trace.layers[0]
    inputs = ", ".join(
        f"{u} = {per_example(first.x[:, j])}" for j, u in enumerate(names.units[0])
    )
    targets = ", ".join(
        f"target_{u} = {per_example(trace.target[:, k])}"
        for k, u in enumerate(names.units[-1])
    )
    lines = [f"inputs:  {inputs}", f"targets: {targets}"]
    for i, t in enumerate(trace.layers):
        src, dst = names.units[i], names.units[i + 1]
        weights = ", ".join(
            f"{names.weights[i][j, k]} = {num(t.w[j, k])} ({src[j]}→{dst[k]})"
            for k in range(len(dst))
            for j in range(len(src))
        )
        lines.append(f"weights: {weights}")
        if t.b is not None:
            biases = ", ".join(
                f"{b} = {num(v)}" for b, v in zip(names.biases[i], t.b, strict=True)
            )
            lines.append(f"biases:  {biases}")
    return lines


def forward_lines(trace: StepTrace, i: int, names: Names) -> list[str]:
    """net = Σ w·input + b and out = f(net) for every unit of layer i (0-based)."""
    t, lines = trace.layers[i], []
    for k, unit in enumerate(names.units[i + 1]):
        symbols = [
            f"{names.weights[i][j, k]}·{names.source(i, j)}" for j in range(len(t.w))
        ]
        numbers = [
            f"{num(t.w[j, k])} × {factor(per_example(t.x[:, j]))}"
            for j in range(len(t.w))
        ]
        if t.b is not None:
            symbols.append(names.biases[i][k])
            numbers.append(num(t.b[k]))
        lines.append(
            f"net_{unit} = {' + '.join(symbols)} = {' + '.join(numbers)} = "
            f"{per_example(t.net[:, k])}"
        )
        if t.activation is None:
            lines.append(f"out_{unit} = net_{unit} (no activation)")
        else:
            net = per_example(t.net[:, k])
            lines.append(
                f"out_{unit} = {activation_formula(t.activation, f'net_{unit}')} = "
                f"{activation_formula(t.activation, net)} = {per_example(t.out[:, k])}"
            )
    return lines


def backward_lines(trace: StepTrace, i: int, names: Names) -> list[str]:
    """Unit by unit of layer i (0-based): ∂E/∂out, ∂out/∂net, δ, then ∂E/∂w for
    every weight into the unit and ∂E/∂b for its bias."""
    lines = []
    for k in range(len(names.units[i + 1])):
        if k:
            lines.append("")
        lines += _upstream(trace, i, k, names)
        lines += _local(trace, i, k, names)
        lines += _gradients(trace, i, k, names)
    return lines


def _upstream(trace: StepTrace, i: int, k: int, names: Names) -> list[str]:
    """∂E/∂out_u: from the loss (output layer) or the sum over the next layer's
    units of δ · w (the post's ∂E_total/∂out_h1 = ∂E_o1/∂out_h1 + ∂E_o2/∂out_h1)."""
    t, unit = trace.layers[i], names.units[i + 1][k]
    if i < len(trace.layers) - 1:
        return _sum_over_next_layer(trace, i, k, unit, names)
    batch = t.x.shape[0]
    formula = loss_derivative_formula(trace.loss, unit, batch)
    substituted = ""
    if trace.loss == "mse":
        text = f"{per_example(t.out[:, k])} − {factor(per_example(trace.target[:, k]))}"
        substituted = f" = {text}" if batch == 1 else f" = ({text}) / {batch}"
    return [f"∂E/∂out_{unit} = {formula}{substituted} = {per_example(t.d_out[:, k])}"]


def _sum_over_next_layer(trace, i, j, unit, names) -> list[str]:
    nxt, after = trace.layers[i + 1], names.units[i + 2]
    weights = names.weights[i + 1][j]
    symbols = " + ".join(f"δ_{v}·{weights[k]}" for k, v in enumerate(after))
    products = " + ".join(
        f"{factor(per_example(nxt.delta[:, k]))} × {num(nxt.w[j, k])}"
        for k in range(len(after))
    )
    terms = " + ".join(
        factor(per_example(nxt.d_x_terms[:, j, k])) for k in range(len(after))
    )
    head = f"∂E/∂out_{unit} = Σ_k ∂E/∂net_k · ∂net_k/∂out_{unit} = {symbols}"
    pad = " " * len(f"∂E/∂out_{unit} ")
    total = per_example(nxt.d_x[:, j])
    if len(after) == 1:
        return [head, f"{pad}= {products} = {total}"]
    return [head, f"{pad}= {products}", f"{pad}= {terms} = {total}"]


def _local(trace: StepTrace, i: int, k: int, names: Names) -> list[str]:
    """∂out_u/∂net_u = f'(net_u) and δ_u = ∂E/∂net_u."""
    t, unit = trace.layers[i], names.units[i + 1][k]
    delta = per_example(t.delta[:, k])
    if t.activation is None:
        return [f"δ_{unit} = ∂E/∂net_{unit} = ∂E/∂out_{unit} = {delta}"]
    formula = derivative_formula(t.activation, f"out_{unit}", f"net_{unit}")
    substituted = derivative_substituted(t.activation, per_example(t.out[:, k]))
    middle = f" = {substituted}" if substituted and t.x.shape[0] == 1 else ""
    local = per_example(t.local[:, k])
    return [
        f"∂out_{unit}/∂net_{unit} = {formula}{middle} = {local}",
        (
            f"δ_{unit} = ∂E/∂net_{unit} = ∂E/∂out_{unit} · ∂out_{unit}/∂net_{unit} = "
            f"{factor(per_example(t.d_out[:, k]))} × {factor(local)} = {delta}"
        ),
    ]


def _gradients(trace: StepTrace, i: int, k: int, names: Names) -> list[str]:
    """∂E/∂w for every weight into unit k of layer i, and ∂E/∂b for its bias."""
    t, unit = trace.layers[i], names.units[i + 1][k]
    several = "Σ_n " if t.x.shape[0] > 1 else ""
    if t.activation is None:
        chain, values = [f"∂E/∂net_{unit}"], [per_example(t.delta[:, k])]
    else:
        chain = [f"∂E/∂out_{unit}", f"∂out_{unit}/∂net_{unit}"]
        values = [per_example(t.d_out[:, k]), per_example(t.local[:, k])]
    chain, values = " · ".join(chain), " × ".join(map(factor, values))
    lines = []
    for j in range(t.w.shape[0]):
        w = names.weights[i][j, k]
        lines.append(
            f"∂E/∂{w} = {several}{chain} · ∂net_{unit}/∂{w} = {several}{values} × "
            f"{factor(per_example(t.x[:, j]))} = {num(t.d_w[j, k])}"
        )
    if t.b is not None:
        b = names.biases[i][k]
        lines.append(
            f"∂E/∂{b} = {several}{chain} · ∂net_{unit}/∂{b} = {several}{values} × 1 = "
            f"{num(t.d_b[k])}"
        )
    return lines


def update_lines(trace: StepTrace, names: Names) -> list[str]:
    """w⁺ = w − η · ∂E/∂w for every weight (and bias, when updated)."""
    eta, lines = num(trace.learning_rate), []
    for i, t in enumerate(trace.layers):
        order = sorted(
            ((j, k) for j in range(t.w.shape[0]) for k in range(t.w.shape[1])),
            key=lambda jk: (jk[1], jk[0]),
        )
        for j, k in order:
            w = names.weights[i][j, k]
            lines.append(
                f"{w}⁺ = {w} − η · ∂E/∂{w} = {num(t.w[j, k])} − {eta} × "
                f"{factor(num(t.d_w[j, k]))} = {num(t.w_new[j, k])}"
            )
        if t.b is not None and trace.update_biases:
            for k, b in enumerate(names.biases[i]):
                lines.append(
                    f"{b}⁺ = {b} − η · ∂E/∂{b} = {num(t.b[k])} − {eta} × "
                    f"{factor(num(t.d_b[k]))} = {num(t.b_new[k])}"
                )
    return lines
