"""Section ``gradient``: ``jaxbp.loss_and_grad`` manual vs ``backprop="autodiff"``
(``jax.value_and_grad``) vs a plain-JAX reference MLP under
``jax.value_and_grad``, all jitted; the forward pass alone (``jaxbp.loss``);
a do-nothing jitted call (the dispatch floor); the FLOP rate against a
``peak_n``² matmul timed in the same repetitions (a paired ratio, robust to
the load changing); compile time; XLA's memory analysis of the gradient and of
an SGD step."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import xla
from benchmarks.context import BenchContext
from benchmarks.problems import (
    dense_sizes_flops,
    gradient_functions,
    matmul_problem,
    mlp_problem,
    sgd_step,
    size_name,
)
from benchmarks.timing import (
    compile_seconds,
    interleaved_times,
    ratio_columns,
    time_columns,
)

GRADIENT_SIZES_FULL = (
    ((64, 128, 128, 10), 32),  # digits
    ((784, 256, 256, 10), 128),
    ((784, 512, 512, 10), 256),
    ((784, 1024, 1024, 10), 512),  # large
)
GRADIENT_SIZES_QUICK = (
    ((64, 128, 128, 10), 32),
    ((784, 256, 256, 10), 128),
)
CONTENDERS = ("manual", "autodiff", "reference", "forward")

#: The printed table: (row key, header, format); "_iqr" keys print q1-q3.
COLUMNS = [
    ("name", "MLP", "{}"),
    ("manual_ms", "manual ms", "{:.3f}"),
    ("autodiff_ms", "autodiff ms", "{:.3f}"),
    ("manual/autodiff", "man/auto", "{:.3f}"),
    ("manual/autodiff_iqr", "IQR", "{}"),
    ("manual/reference", "man/ref", "{:.3f}"),
    ("forward_ms", "fwd ms", "{:.3f}"),
    ("manual/forward", "grad/fwd", "{:.2f}"),
    ("manual_gflops", "GFLOP/s", "{:.1f}"),
    ("manual_of_peak", "of peak", "{:.0%}"),
    ("floor_ms", "floor ms", "{:.3f}"),
    ("manual_compile_s", "compile s", "{:.2f}"),
    ("manual_temp_mib", "temp MiB", "{:.2f}"),
    ("autodiff_temp_mib", "auto temp", "{:.2f}"),
    ("step_peak_mib", "SGD step peak MiB", "{:.2f}"),
]


def gradient_rows(
    ctx: BenchContext,
    configs: Sequence[tuple[Sequence[int], int]] | None = None,
) -> list[dict]:
    """Manual vs autodiff vs reference gradients and the forward pass, per MLP size."""
    if configs is None:
        configs = GRADIENT_SIZES_QUICK if ctx.quick else GRADIENT_SIZES_FULL
    return [gradient_row(ctx, sizes, batch) for sizes, batch in configs]


def gradient_row(ctx: BenchContext, sizes: Sequence[int], batch: int) -> dict:
    """One MLP size: the contenders timed interleaved with the dispatch floor
    and the peak matmul, then XLA's view of the compiled gradients."""
    model, params, x, y = mlp_problem(sizes, batch)
    fns = gradient_functions(model)
    args = (params, x, y)
    jitted = {k: jax.jit(f) for k, f in fns.items()}
    # a jitted call that does (almost) nothing with the same arguments:
    # Python dispatch and argument handling, the floor of any call
    jitted["floor"] = jax.jit(lambda p, x, y: x[0, 0], keep_unused=True)
    calls = {k: functools.partial(f, *args) for k, f in jitted.items()}
    # the matmul peak, timed in the same repetitions: "of peak" is a paired
    # ratio, robust to the load of the machine changing during the run
    matmul, a, b, _ = matmul_problem(ctx.peak_n)
    calls["matmul"] = functools.partial(matmul, a, b)
    times = interleaved_times(calls, reps=ctx.reps, min_seconds=ctx.min_seconds)
    row: dict[str, Any] = {
        "section": "gradient",
        "name": size_name(sizes, batch),
        "sizes": list(sizes),
        "batch": batch,
        "dtype": "float32",
    }
    row.update(_timing_columns(times))
    row.update(_flop_columns(times, sizes, batch, ctx))
    row.update(_xla_columns(jitted, fns, args, ctx.compile_reps))
    step = jax.jit(sgd_step(model), donate_argnums=0)
    step_compiled = step.lower(*args).compile()
    row.update(
        xla.attempt_columns("step_memory", xla.memory_columns, step_compiled, "step")
    )
    ctx.say(
        f"gradient {row['name']}: manual {row['manual_ms']:.3f} ms, "
        f"manual/autodiff {row['manual/autodiff']:.3f}"
    )
    return row


def _timing_columns(times: dict[str, np.ndarray]) -> dict[str, float]:
    """Each contender's time and the paired ratios between them."""
    out: dict[str, float] = {}
    for k in (*CONTENDERS, "floor", "matmul"):
        out.update(time_columns(f"{k}_ms", times[k]))
    for num, den in (
        ("manual", "autodiff"),
        ("manual", "reference"),
        ("manual", "forward"),
        ("autodiff", "forward"),
    ):
        out.update(ratio_columns(f"{num}/{den}", times[num], times[den]))
    return out


def _flop_columns(times, sizes, batch, ctx: BenchContext) -> dict[str, float]:
    """Counted GFLOPs, each contender's FLOP rate and its share of the matmul
    peak timed beside it (paired) and of the matmul section's peak."""
    forward_flops, gradient_flops = dense_sizes_flops(sizes, batch)
    matmul_flops = 2 * ctx.peak_n**3
    out: dict[str, float] = {
        "gradient_gflop": gradient_flops / 1e9,
        "forward_gflop": forward_flops / 1e9,
        "peak_n": ctx.peak_n,
        "matmul_gflops": matmul_flops / np.median(times["matmul"]) / 1e9,
    }
    section_peak = ctx.shared.get("peak_gflops")
    for k in CONTENDERS:
        flops = forward_flops if k == "forward" else gradient_flops
        out[f"{k}_gflops"] = flops / np.median(times[k]) / 1e9
        # (flops / t_k) / (matmul_flops / t_matmul), per repetition
        out.update(
            ratio_columns(
                f"{k}_of_peak", times["matmul"] * (flops / matmul_flops), times[k]
            )
        )
        if section_peak:
            out[f"{k}_of_section_peak"] = out[f"{k}_gflops"] / section_peak
    return out


def _xla_columns(jitted, fns, args, compile_reps: int) -> dict[str, Any]:
    """XLA's FLOP count and op count of the compiled gradients and forward;
    memory analysis and compile times of the gradients."""
    out: dict[str, Any] = {}
    for k in ("manual", "autodiff", "forward"):
        compiled = jitted[k].lower(*args).compile()
        out[f"{k}_xla_gflop"] = xla.attempt(f"{k}_xla_gflop", xla.xla_gflop, compiled)
        out[f"{k}_hlo_ops"] = xla.attempt(f"{k}_hlo_ops", xla.hlo_op_count, compiled)
        if k == "forward":
            continue
        out.update(xla.attempt_columns(f"{k}_memory", xla.memory_columns, compiled, k))
        seconds = compile_seconds(fns[k], args, reps=compile_reps)
        out[f"{k}_lower_s"] = seconds["lower_s"]
        out[f"{k}_compile_s"] = seconds["compile_s"]
    return out
