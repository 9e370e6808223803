"""Section ``matmul``: the measured peak, large square float32 ``x @ w``."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from benchmarks.context import BenchContext
from benchmarks.problems import matmul_problem
from benchmarks.timing import interleaved_times, quartiles

#: The printed table: (row key, header, format).
COLUMNS = [
    ("name", "matmul", "{}"),
    ("ms", "ms", "{:.2f}"),
    ("gflops", "GFLOP/s", "{:.1f}"),
    ("of_peak", "of peak", "{:.0%}"),
]


def matmul_rows(ctx: BenchContext, sizes: Sequence[int] | None = None) -> list[dict]:
    """The measured matmul peak: float32 ``x @ w`` on square matrices.

    The largest FLOP rate is stored as ``ctx.shared["peak_gflops"]`` for the
    gradient rows."""
    if sizes is None:
        sizes = (1024, ctx.peak_n) if ctx.quick else (1024, ctx.peak_n, 4096)
    problems = {n: matmul_problem(n) for n in sizes}
    # the sizes interleaved, like any comparison; fewer repetitions (big calls)
    times = interleaved_times(
        {n: functools.partial(mm, a, b) for n, (mm, a, b, _) in problems.items()},
        reps=max(3, ctx.reps // 3),
        min_seconds=ctx.min_seconds,
    )
    rows = []
    for n, (_, _, _, flops) in problems.items():
        q1, med, q3 = quartiles(times[n])
        rows.append(
            {
                "section": "matmul",
                "name": f"{n}x{n} @ {n}x{n} f32",
                "n": n,
                "ms": med * 1e3,
                "ms_q1": q1 * 1e3,
                "ms_q3": q3 * 1e3,
                "gflops": flops / med / 1e9,
                "gflops_q1": flops / q3 / 1e9,
                "gflops_q3": flops / q1 / 1e9,
            }
        )
        ctx.say(f"matmul {n}: {rows[-1]['gflops']:.1f} GFLOP/s")
    best = max(rows, key=lambda r: r["gflops"])
    ctx.shared["peak_gflops"] = best["gflops"]
    for r in rows:
        r["of_peak"] = r["gflops"] / ctx.shared["peak_gflops"]
    return rows
