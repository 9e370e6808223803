"""Section ``profile``: a JAX profiler trace of the gradients: host (dispatch)
time against XLA execution, matmul kernels against the rest."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence

import jax

from benchmarks import xla
from benchmarks.context import BenchContext
from benchmarks.gradient import GRADIENT_SIZES_FULL, GRADIENT_SIZES_QUICK
from benchmarks.problems import (
    dense_sizes_flops,
    gradient_functions,
    mlp_problem,
    size_name,
)
from benchmarks.timing import blocking

#: The printed table: (row key, header, format).
COLUMNS = [
    ("name", "gradient", "{}"),
    ("wall_us", "wall us", "{:.0f}"),
    ("host_us", "host us", "{:.0f}"),
    ("execute_us", "XLA us", "{:.0f}"),
    ("matmul_us", "matmul us", "{:.0f}"),
    ("other_us", "other us", "{:.0f}"),
    ("kernels", "kernels", "{}"),
    ("matmul_gflops", "matmul GFLOP/s", "{:.1f}"),
]


def op_profile(fn, args, *, seconds: float = 1.0, max_steps: int = 200) -> dict:
    """Where the time of a jitted ``fn(*args)`` goes: :func:`xla.kernel_profile`
    of as many calls as last about ``seconds`` (3 to ``max_steps``), with the
    number of calls as ``steps`` and the six slowest ``ops`` (rounded)."""
    jitted = jax.jit(fn)
    compiled = jitted.lower(*args).compile()
    call = blocking(functools.partial(jitted, *args))
    call()
    start = time.perf_counter()
    call()
    steps = int(max(3, min(max_steps, seconds / (time.perf_counter() - start))))
    profile = xla.kernel_profile(call, compiled, steps)
    slowest = list(profile["ops"].items())[:6]
    return {**profile, "steps": steps, "ops": {k: round(v, 2) for k, v in slowest}}


def profile_rows(
    ctx: BenchContext,
    configs: Sequence[tuple[Sequence[int], int]] | None = None,
) -> list[dict]:
    """Profiles of the manual and autodiff gradients: host time vs XLA execution,
    matmul kernels vs the rest, with the FLOP rate of the matmul kernels alone.
    Where the profiler gives nothing, each row's ``profile`` field says why."""
    if configs is None:
        configs = GRADIENT_SIZES_QUICK[:1] if ctx.quick else GRADIENT_SIZES_FULL
    rows = []
    for sizes, batch in configs:
        model, params, x, y = mlp_problem(sizes, batch)
        fns = gradient_functions(model)
        _, gradient_flops = dense_sizes_flops(sizes, batch)
        for backprop in ("manual", "autodiff"):
            row = {
                "section": "profile",
                "name": f"{size_name(sizes, batch)} {backprop}",
            }
            prof = xla.attempt("profile", op_profile, fns[backprop], (params, x, y))
            if isinstance(prof, str):
                rows.append({**row, "profile": prof})
                continue
            row.update({k: v for k, v in prof.items() if k != "ops"})
            row["host_us"] = prof["wall_us"] - prof["execute_us"]
            row["matmul_gflops"] = gradient_flops / prof["matmul_us"] / 1e3
            row["slowest_ops"] = prof["ops"]
            rows.append(row)
            ctx.say(
                f"profile {row['name']}: execute {row['execute_us']:.0f} us, "
                f"matmul {row['matmul_us']:.0f} us, other {row['other_us']:.0f} us"
            )
    return rows
