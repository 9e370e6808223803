"""Renderings of a walk-through: plain text, markdown, and a JSON-ready dict
holding every intermediate number (full float64 precision)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxbp.explain.formulas import Section
from jaxbp.explain.names import bias_names, unit_names, weight_names
from jaxbp.explain.steps import LossCurve
from jaxbp.explain.trace import StepTrace
from jaxbp.explain.walkthrough import table_steps

TITLE = "Backpropagation step by step (jaxbp explain)"


def to_text(sections: list[Section]) -> str:
    """Each section: its title underlined, its lines indented, its table aligned."""
    parts = [f"{TITLE}\n{'=' * len(TITLE)}"]
    for section in sections:
        lines = [section.title, "-" * len(section.title)]
        lines += [f"  {line}" if line else "" for line in section.lines]
        if section.table:
            lines += [f"  {row}" for row in _aligned(*section.table)]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _aligned(header, rows) -> list[str]:
    widths = [max(len(r[c]) for r in (header, *rows)) for c in range(len(header))]
    return [
        "  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in (header, *rows)
    ]


def to_markdown(sections: list[Section]) -> str:
    """A heading per section, its formulas in a code block, its table as a table."""
    parts = [f"# {TITLE}"]
    for section in sections:
        block = [f"## {section.title}", "", "```text", *section.lines, "```"]
        if section.table:
            header, rows = section.table
            block += ["", _md_row(header), _md_row(["---:"] * len(header))]
            block += [_md_row(row) for row in rows]
        parts.append("\n".join(block))
    return "\n\n".join(parts) + "\n"


def _md_row(cells) -> str:
    return "| " + " | ".join(cells) + " |"


def trace_dict(trace: StepTrace, curve: LossCurve | None = None) -> dict[str, Any]:
    """Every number of the step (and of ``curve``), as lists and floats.

    ``forward`` and ``update`` run input to output, ``backward`` output to input;
    layer ``l`` is the l-th dense layer, with the fields of
    :class:`jaxbp.explain.LayerTrace` (``d_w[j][k]`` is ∂E/∂W[j, k]).
    """
    sizes = trace.sizes
    result = {
        "network": {
            "sizes": list(sizes),
            "activations": [t.activation or "identity" for t in trace.layers],
            "loss": trace.loss,
            "learning_rate": trace.learning_rate,
            "update_biases": trace.update_biases,
        },
        "names": {
            "units": [list(u) for u in unit_names(sizes)],
            "weights": [w.tolist() for w in weight_names(sizes)],
            "biases": [list(b) for b in bias_names(sizes)],
        },
        "inputs": _plain(trace.x),
        "targets": _plain(trace.target),
        "forward": [_fields(t, ("w", "b", "x", "net", "out")) for t in trace.layers],
        "loss": {"E": trace.value, "per_output": _plain(trace.loss_terms)},
        "backward": [
            _fields(t, ("d_out", "local", "delta", "d_w", "d_b", "d_x", "d_x_terms"))
            for t in reversed(trace.layers)
        ],
        "update": [_fields(t, ("w_new", "b_new")) for t in trace.layers],
        "E_after": trace.value_after,
    }
    if curve is not None:
        steps = len(curve.losses) - 1
        result["steps"] = {
            "count": steps,
            "E": {str(s): float(curve.losses[s]) for s in table_steps(steps)},
            "output": _plain(curve.output),
            "params": [
                {name: _plain(v) for name, v in p.items()} for p in curve.params if p
            ],
        }
    return result


def _fields(t, names) -> dict[str, Any]:
    return {"layer": t.layer, **{name: _plain(getattr(t, name)) for name in names}}


def _plain(value):
    return None if value is None else np.asarray(value).tolist()
