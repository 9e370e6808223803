"""A picture of one step: the network's units labelled with their output and δ,
its connections with their weight and gradient.

matplotlib is imported inside :func:`draw_network` (Agg canvas, no pyplot), so
``import jaxbp`` does not import it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxbp.checks import check_int
from jaxbp.explain.names import bias_names, unit_names, weight_names
from jaxbp.explain.trace import StepTrace

COLUMN, ROW, RADIUS = 5.2, 3.6, 0.42
INCH = 0.75  # figure inches per data unit
POSITIVE, NEGATIVE, NODE = "#1f5fbf", "#c0392b", "#f4f1e8"
MAX_LABELLED_UNITS = 3  # wider layers: edge labels would overlap


def _short(value) -> str:
    return f"{float(value):.6g}"


def draw_network(trace: StepTrace, path, *, max_units: int = 4, dpi: int = 150) -> Path:
    """Write a PNG of ``trace`` to ``path`` (at most ``max_units`` units a layer;
    with several examples the units show the first one's values)."""
    check_int("max_units", max_units, 1)
    from matplotlib.figure import Figure

    shown = [min(n, max_units) for n in trace.sizes]
    width = COLUMN * (len(shown) - 1) + 4.0
    height = (max(shown) - 1) * ROW + 4.4
    fig = Figure(figsize=(width * INCH, height * INCH + 1.0), dpi=dpi)
    bottom, top = 0.45 / (height * INCH + 1.0), 1 - 0.55 / (height * INCH + 1.0)
    ax = fig.add_axes((0.0, bottom, 1.0, top - bottom))
    ax.set_xlim(-2.0, width - 2.0)
    ax.set_ylim(-height / 2, height / 2)
    ax.set_aspect("equal")
    ax.axis("off")
    positions = [_column(c, n) for c, n in enumerate(shown)]
    _draw_edges(ax, trace, positions, shown)
    _draw_nodes(ax, trace, positions, shown)
    _captions(fig, trace, labelled=max(shown) <= MAX_LABELLED_UNITS)
    path = Path(path)
    fig.savefig(path, format="png", facecolor="white")
    return path


def _column(c: int, shown: int) -> list[tuple[float, float]]:
    """The centres of column c's units, top to bottom, centred on y = 0."""
    ys = (np.arange(shown)[::-1] - (shown - 1) / 2) * ROW
    return [(c * COLUMN, float(y)) for y in ys]


def _draw_edges(ax, trace, positions, shown) -> None:
    labelled = max(shown) <= MAX_LABELLED_UNITS
    names = weight_names(trace.sizes)
    for i, t in enumerate(trace.layers):
        scale = np.max(np.abs(t.d_w)) or 1.0
        for j, (x0, y0) in enumerate(positions[i]):
            for k, (x1, y1) in enumerate(positions[i + 1]):
                grad = t.d_w[j, k]
                ax.plot(
                    (x0, x1),
                    (y0, y1),
                    color=POSITIVE if grad >= 0 else NEGATIVE,
                    linewidth=0.8 + 3.2 * abs(grad) / scale,
                    alpha=0.75,
                    zorder=1,
                )
                if labelled:
                    label = f"{names[i][j, k]} = {_short(t.w[j, k])}\n∂E/∂{names[i][j, k]} = {_short(grad)}"
                    _edge_label(ax, (x0, y0), (x1, y1), label)


def _edge_label(ax, start, end, label) -> None:
    """The label a third of the way along the edge, turned to its direction."""
    (x0, y0), (x1, y1) = start, end
    where = 0.3
    x, y = x0 + where * (x1 - x0), y0 + where * (y1 - y0)
    angle = np.degrees(np.arctan2(y1 - y0, x1 - x0))
    ax.text(
        x,
        y,
        label,
        rotation=angle,
        rotation_mode="anchor",
        transform_rotates_text=True,
        ha="center",
        va="center",
        fontsize=8.5,
        linespacing=1.1,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.9},
        zorder=2,
    )


def _draw_nodes(ax, trace, positions, shown) -> None:
    units = unit_names(trace.sizes)
    biases = bias_names(trace.sizes)
    for c, column in enumerate(positions):
        for k, (x, y) in enumerate(column):
            ax.add_patch(_circle(x, y))
            ax.text(
                x,
                y,
                units[c][k],
                ha="center",
                va="center",
                fontsize=12,
                weight="bold",
                zorder=4,
            )
            _node_label(ax, x, y, _node_text(trace, c, k, biases))
        if trace.sizes[c] > shown[c]:
            x, y = column[-1]
            more = f"⋮\n{trace.sizes[c] - shown[c]} more"
            ax.text(x, y - ROW / 2, more, ha="center", va="center", fontsize=8)


def _node_label(ax, x, y, text) -> None:
    """The unit's numbers above it in the upper half (its edges leave downwards),
    below it in the lower half."""
    above = y > 0
    ax.text(
        x,
        y + (RADIUS + 0.12) * (1 if above else -1),
        text,
        ha="center",
        va="bottom" if above else "top",
        fontsize=9,
        linespacing=1.15,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        zorder=4,
    )


def _circle(x, y):
    from matplotlib.patches import Circle

    return Circle(
        (x, y), RADIUS, facecolor=NODE, edgecolor="#333333", linewidth=1.2, zorder=3
    )


def _node_text(trace: StepTrace, c: int, k: int, biases) -> str:
    if c == 0:
        return f"{unit_names(trace.sizes)[0][k]} = {_short(trace.layers[0].x[0, k])}"
    t = trace.layers[c - 1]
    lines = [f"out = {_short(t.out[0, k])}", f"δ = {_short(t.delta[0, k])}"]
    if t.b is not None:
        lines.append(f"{biases[c - 1][k]} = {_short(t.b[k])}")
    if c == len(trace.layers):
        lines.append(f"target = {_short(trace.target[0, k])}")
    return "\n".join(lines)


def _captions(fig, trace: StepTrace, *, labelled: bool) -> None:
    several = " (first example shown)" if trace.x.shape[0] > 1 else ""
    fig.text(
        0.5,
        0.955,
        f"One step of backpropagation{several}: E_total = {_short(trace.value)} → "
        f"{_short(trace.value_after)} after w⁺ = w − η·∂E/∂w, η = {_short(trace.learning_rate)}",
        ha="center",
        va="top",
        fontsize=10,
    )
    fig.text(
        0.5,
        0.035,
        "units: out = f(net), δ = ∂E/∂net;  connections: "
        + ("weight and ∂E/∂weight " if labelled else "")
        + "(blue ≥ 0, red < 0, width ∝ |∂E/∂w| within a layer)",
        ha="center",
        fontsize=8,
        color="#444444",
    )
