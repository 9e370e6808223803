"""What every experiment script shares: flags, output files, a printed table.

Each script is ``python experiments/NAME.py [--quick] [--out DIR]``; it writes
``DIR/NAME.json`` (every number it measured) and ``DIR/NAME.png`` (its figure)
and prints a short table. ``--quick`` shrinks the run to finish in under
30 seconds on 2 CPU cores; the full run is what the README reports.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(name: str, description: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"experiments/{name}.py", description=description
    )
    parser.add_argument("--quick", action="store_true", help="a small run (< 30 s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output directory (default {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    args.name = name
    if args.out is None:
        args.out = DEFAULT_OUT / ("quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(args, results: dict) -> Path:
    """Write ``DIR/NAME.json`` with the results plus how they were made."""
    path = args.out / f"{args.name}.json"
    payload = {"experiment": args.name, "quick": bool(args.quick), **results}
    path.write_text(json.dumps(_jsonable(payload), indent=2))
    return path


def figure_path(args) -> Path:
    return args.out / f"{args.name}.png"


def pyplot():
    """matplotlib.pyplot with a file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def print_table(
    header: Sequence[str], rows: Sequence[Sequence], title: str = ""
) -> None:
    """Print rows as an aligned text table (floats with 4 significant digits)."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [list(map(str, header))] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if title:
        print(title)
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
