"""Benchmarks: the hand-written gradient against autodiff, the matmul peak, memory,
and training: an epoch as ``lax.scan``, many models under ``vmap``.

``python benchmarks/benchmark.py [--quick] [--out DIR]`` (from the repository
root) runs every section, prints one table per section and writes
``DIR/benchmark.json``: every number with its interquartile range, and the
machine it was measured on. How we time is in :mod:`benchmarks.timing`; XLA's
own view (HLO, cost and memory analyses, profiler traces, RSS) comes from
:mod:`benchmarks.xla`, whose unavailable answers are reported as
``"unavailable: <reason>"`` fields and warning lines.

Sections (each a function ``ctx -> list of row dicts`` in ``SECTIONS``, with
its table's columns in ``COLUMNS``; add a function there to add rows):

- ``matmul``: the measured peak, large square float32 ``x @ w``.
- ``gradient``: manual vs autodiff vs a plain-JAX reference gradient, the
  forward pass, the dispatch floor, FLOP rates against the peak, compile
  time, XLA's memory analysis.
- ``profile``: a profiler trace of the gradients: host time against XLA
  execution, matmul kernels against the rest.
- ``dots``: each matrix product of the large MLP's gradient timed alone, and
  the kernel library XLA:CPU runs it with.
- ``checkpoint``: deep MLPs, plain vs checkpointed segments: temp memory,
  peak RSS (fresh process), FLOPs and time.
- ``epoch``: an epoch as one ``lax.scan`` vs a Python loop of jitted steps.
- ``vmap``: N small models trained in one ``vmap``-ed program vs N runs.
- ``sequence``: tokens per second of character-level RNN, LSTM and GRU
  train steps in ``lax.scan`` chunks, manual vs autodiff.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jax
import jaxlib

from benchmarks import (
    checkpoint,
    dots,
    epoch,
    gradient,
    matmul,
    profiles,
    report,
    sequence,
    vmap,
)
from benchmarks.context import BenchContext

Section = Callable[[BenchContext], list[dict]]

#: The sections, in order; each maps a BenchContext to a list of row dicts with
#: at least "section" and "name".
SECTIONS: list[Section] = [
    matmul.matmul_rows,
    gradient.gradient_rows,
    profiles.profile_rows,
    dots.dot_rows,
    checkpoint.checkpoint_rows,
    epoch.epoch_rows,
    vmap.vmap_rows,
    sequence.sequence_rows,
]
#: Columns of the printed table per section: (key, header, format).
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "matmul": matmul.COLUMNS,
    "gradient": gradient.COLUMNS,
    "profile": profiles.COLUMNS,
    "dots": dots.COLUMNS,
    "checkpoint": checkpoint.COLUMNS,
    "epoch": epoch.COLUMNS,
    "vmap": vmap.COLUMNS,
    "sequence": sequence.COLUMNS,
}


def _cpu_info() -> dict[str, Any]:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu": platform.processor() or None}
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    mhz = re.search(r"^cpu MHz\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
    info: dict[str, Any] = {
        "cpu": model.group(1) if model else None,
        "cpu_mhz": float(mhz.group(1)) if mhz else None,
    }
    if flags:
        simd = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
        info["simd"] = [f for f in simd if f in flags.group(1).split()]
    return info


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        **_cpu_info(),
    }
    with contextlib.suppress(AttributeError):  # not on every OS
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    with contextlib.suppress(AttributeError):
        info["loadavg"] = list(os.getloadavg())
    return info


def run(
    ctx: BenchContext | None = None, sections: Sequence[Section] | None = None
) -> dict[str, Any]:
    """Run the sections (default :data:`SECTIONS`); returns
    ``{"machine", "settings", "rows"}``."""
    ctx = ctx or BenchContext.make()
    machine = machine_info()
    start = time.perf_counter()
    rows: list[dict] = []
    for section in SECTIONS if sections is None else sections:
        rows.extend(section(ctx))
    with contextlib.suppress(AttributeError):
        machine["loadavg_after"] = list(os.getloadavg())
    settings = {
        "quick": ctx.quick,
        "reps": ctx.reps,
        "min_seconds": ctx.min_seconds,
        "seconds": time.perf_counter() - start,
        "peak_gflops": ctx.shared.get("peak_gflops"),
    }
    return {"machine": machine, "settings": settings, "rows": rows}


def _cell(row: dict, key: str, fmt: str) -> str:
    """One table cell: ``fmt`` of the value; "-" when missing or NaN, "n/a"
    when unavailable; ``<key>_iqr`` prints the row's ``<key>_q1-<key>_q3``."""
    if key.endswith("_iqr"):
        base = key[: -len("_iqr")]
        if f"{base}_q1" not in row:
            return "-"
        return f"{row[f'{base}_q1']:.3f}-{row[f'{base}_q3']:.3f}"
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, str) and value.startswith("unavailable"):
        return "n/a"
    if isinstance(value, list):
        return "+".join(map(str, value))
    return fmt.format(value)


def print_tables(rows: Sequence[dict]) -> None:
    """A table per section, with the section's :data:`COLUMNS` (unknown
    sections: every column of their first row)."""
    for section in dict.fromkeys(r["section"] for r in rows):
        part = [r for r in rows if r["section"] == section]
        columns = COLUMNS.get(section)
        if columns is None:
            columns = [(k, k, "{}") for k in part[0] if k != "section"]
            cells = [[r.get(k) for k, _, _ in columns] for r in part]
        else:
            cells = [[_cell(r, k, f) for k, _, f in columns] for r in part]
        report.print_table([h for _, h, _ in columns], cells, title=f"[{section}]")
        print()


def main(argv: Sequence[str] | None = None) -> int:
    """Run every section, print the tables, write ``DIR/benchmark.json``."""
    args = report.parse_args(
        "benchmark",
        "Manual vs autodiff gradients, the matmul peak, memory, gradient "
        "checkpointing, scan epochs, vmapped training, sequence models.",
        argv,
    )
    ctx = BenchContext.make(quick=args.quick, log=lambda m: print(m, file=sys.stderr))
    result = run(ctx)
    m, settings = result["machine"], result["settings"]
    peak = settings["peak_gflops"]
    print(
        f"{m.get('cpu')} ({m['nproc']} CPUs), {m['backend']}, jax {m['jax']}, "
        f"matmul peak {f'{peak:.1f} GFLOP/s' if peak else 'not measured'}, "
        f"{settings['seconds']:.0f} s"
    )
    print_tables(result["rows"])
    print(f"wrote {report.write_json(args.path, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
