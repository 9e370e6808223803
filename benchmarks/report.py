"""What the benchmark scripts share: their flags, the one table printer and the
one JSON writer (numpy and jax values, NaN and infinities).

Each script is ``python benchmarks/NAME.py [--quick] [--out DIR]``; it prints
its tables and writes ``DIR/NAME.json``. The default ``DIR`` is
``benchmarks/results/`` (``benchmarks/results/quick/`` with ``--quick``, so a
quick run never overwrites the full run's numbers).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(
    name: str,
    description: str,
    argv=None,
    *,
    results: Path | None = None,
    options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--quick`` and ``--out DIR`` (created; default ``results``, or its
    ``quick/`` with ``--quick``, so a quick run never overwrites the full run's
    numbers); ``args.name`` is ``name`` and ``args.path`` the JSON file to write.
    ``options(parser)`` adds a script's own flags. The experiments use it too,
    with their own ``results``."""
    results = RESULTS if results is None else results
    parser = argparse.ArgumentParser(
        prog=f"{results.parent.name}/{name}.py", description=description
    )
    parser.add_argument("--quick", action="store_true", help="a small, fast run")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output directory (default {results}, or its quick/ with --quick)",
    )
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = results / "quick" if args.quick else results
    args.out.mkdir(parents=True, exist_ok=True)
    args.name = name
    args.path = args.out / f"{name}.json"
    return args


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer >= 1 (else argparse's one-line error, exit 2)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; got {text!r}")
    return int(text)


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy/jax arrays and scalars as lists and numbers, tuples
    as lists, keys as strings, NaN as None and infinities as "inf"/"-inf"."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy and jax arrays and scalars
        return to_jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_result(args: argparse.Namespace, started: float, **fields: Any) -> Path:
    """Write a benchmark's result to ``args.path``: its name, ``--quick``,
    ``fields`` in order, and the ``seconds`` since ``started`` (a
    ``time.perf_counter()``); print where it went, and return the path."""
    payload = {"benchmark": args.name, "quick": args.quick, **fields}
    payload["seconds"] = time.perf_counter() - started
    path = write_json(args.path, payload)
    print(f"wrote {path}")
    return path


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` (made JSON-able by :func:`to_jsonable`) to ``path``,
    indented, creating its directory; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(payload), indent=2, allow_nan=False))
    return path


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(
    header: Sequence[str], rows: Sequence[Sequence], title: str = ""
) -> str:
    """Rows as an aligned text table: the first column left-aligned, the others
    right-aligned; floats with 4 significant digits, None as "-", strings as
    they are (format a cell yourself for another precision)."""
    cells = [list(map(str, header))] + [[_text(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(row):
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(padded).rstrip()

    lines = [title] if title else []
    lines.append(line(cells[0]))
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(line(row) for row in cells[1:])
    return "\n".join(lines)


def print_table(
    header: Sequence[str], rows: Sequence[Sequence], title: str = ""
) -> None:
    """Print :func:`format_table` of ``header`` and ``rows``."""
    print(format_table(header, rows, title))
