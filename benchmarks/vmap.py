"""Section ``vmap``: N small models trained in one ``jax.vmap``-ed program vs N
sequential runs of the same jitted training, with the profile of both."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from benchmarks import xla
from benchmarks.context import BenchContext
from benchmarks.epoch import top_ops
from benchmarks.problems import (
    dense_sizes_flops,
    matmul_problem,
    max_difference,
    size_name,
)
from benchmarks.timing import (
    compile_seconds,
    interleaved_times,
    ratio_columns,
    time_columns,
)
from jaxbp import data, optim
from jaxbp.train import make_train_fn

#: (dataset, MLP sizes, batch) of the vmap section: small models.
VMAP_PROBLEMS_FULL = (("blobs", (2, 16, 3), 16), ("digits", (64, 32, 10), 32))
VMAP_PROBLEMS_QUICK = (("blobs", (2, 16, 3), 16),)

#: The printed table: (row key, header, format).
COLUMNS = [
    ("name", "models", "{}"),
    ("vmap_ms", "vmap ms", "{:.1f}"),
    ("sequential_ms", "sequential ms", "{:.1f}"),
    ("sequential/vmap", "seq/vmap", "{:.2f}"),
    ("bound", "bound", "{:.1f}"),
    ("vmap_gflops", "vmap GFLOP/s", "{:.1f}"),
    ("sequential_gflops", "seq GFLOP/s", "{:.1f}"),
    ("vmap_of_peak", "of peak", "{:.0%}"),
    ("single_kernel_share", "1 run in kernels", "{:.0%}"),
    ("matmul_share", "matmul", "{:.0%}"),
    ("sort_share", "shuffle", "{:.0%}"),
    ("vmap_compile_s", "compile s", "{:.1f}"),
]


def training_runs(dataset: str, sizes, batch: int, num_models: int, epochs: int):
    """The N runs of a small MLP trained with Adam: ``vmap`` (one program for
    all) and ``sequential`` (the single-run program called N times), as
    argument-less calls, with the pieces the measurements need."""
    train_x, train_y = data.load(dataset).train
    model = jaxbp.mlp(list(sizes))
    train = make_train_fn(
        model,
        train_x,
        train_y,
        optimizer_fn=optim.adam,
        batch_size=batch,
        epochs=epochs,
    )
    keys = jax.random.split(jax.random.key(0), num_models)
    lr = jnp.float32(3e-3)
    single = jax.jit(train)
    vmapped = jax.jit(jax.vmap(train, in_axes=(0, None))).lower(keys, lr).compile()
    compiled_single = single.lower(keys[0], lr).compile()
    key_list = list(keys)

    def sequential():
        return [single(k, lr) for k in key_list]

    return {
        "vmap": functools.partial(vmapped, keys, lr),
        "sequential": sequential,
        "compiled_vmap": vmapped,
        "compiled_single": compiled_single,
        "single_call": functools.partial(compiled_single, keys[0], lr),
        "train": train,
        "args": (keys, lr),
        "steps": train_x.shape[0] // batch,
    }


def _compile_columns(runs: dict, compile_reps: int) -> dict[str, float]:
    keys, lr = runs["args"]
    single = compile_seconds(runs["train"], (keys[0], lr), reps=compile_reps)
    vmapped = compile_seconds(
        jax.vmap(runs["train"], in_axes=(0, None)), (keys, lr), reps=compile_reps
    )
    return {
        "single_compile_s": single["compile_s"],
        "vmap_compile_s": vmapped["compile_s"],
    }


def _profile_columns(runs: dict, num_models: int) -> dict[str, Any]:
    """Kernel time of one model's run alone vs its share of the vmapped
    program (both under the profiler, which slows small kernels: compare
    them, not wall times), and the vmapped program's kernel time by kind."""
    profile = xla.attempt(
        "profile", xla.kernel_profile, runs["vmap"], runs["compiled_vmap"], 3
    )
    single = xla.attempt(
        "profile", xla.kernel_profile, runs["single_call"], runs["compiled_single"], 10
    )
    for result in (profile, single):
        if isinstance(result, str):
            return {"profile": result}
    total = profile["kernel_us"]
    sort_us = sum(us for op, us in profile["ops"].items() if "sort" in op)
    return {
        "single_kernel_ms": single["kernel_us"] / 1e3,
        "vmap_kernel_per_model_ms": total / num_models / 1e3,
        # of a single run's time, the part in kernels (the rest, launching
        # and dispatch, is what vmap removes)
        "single_kernel_share": single["kernel_us"] / single["wall_us"],
        "matmul_share": profile["matmul_us"] / total,
        "sort_share": sort_us / total,
        "other_share": (profile["other_us"] - sort_us) / total,
        "top_ops": top_ops(profile["ops"], total),
    }


def vmap_row(ctx: BenchContext, problem, num_models: int, epochs: int) -> dict:
    """One problem: vmapped vs sequential runs, timed interleaved with the
    peak matmul; the bound, compile times and profiles."""
    dataset, sizes, batch = problem
    runs = training_runs(dataset, sizes, batch, num_models, epochs)
    sequential = jax.tree.map(lambda *a: jnp.stack(a), *runs["sequential"]())
    agree = max_difference(runs["vmap"]().params, sequential.params)
    matmul, a, b, matmul_flops = matmul_problem(ctx.peak_n)
    times = interleaved_times(
        {
            "vmap": runs["vmap"],
            "sequential": runs["sequential"],
            "matmul": functools.partial(matmul, a, b),
        },
        reps=max(3, ctx.reps // 3),
        min_seconds=ctx.min_seconds,
        warmup=1,
    )
    flops = num_models * epochs * runs["steps"] * dense_sizes_flops(sizes, batch)[1]
    peak = matmul_flops / float(np.median(times["matmul"]))
    row: dict[str, Any] = {
        "section": "vmap",
        "name": f"{num_models} x {size_name(sizes, batch)} {dataset}",
        "models": num_models,
        "epochs": epochs,
        "steps_per_epoch": runs["steps"],
    }
    for k in ("vmap", "sequential"):
        row.update(time_columns(f"{k}_ms", times[k]))
        row[f"{k}_gflops"] = flops / float(np.median(times[k])) / 1e9
    row.update(ratio_columns("sequential/vmap", times["sequential"], times["vmap"]))
    row["gflop"] = flops / 1e9
    row["peak_gflops"] = peak / 1e9
    row["vmap_of_peak"] = flops / float(np.median(times["vmap"])) / peak
    row["bound"] = float(np.median(times["sequential"])) / (flops / peak)
    row.update(_compile_columns(runs, ctx.compile_reps))
    row["max_param_diff"] = agree
    row.update(_profile_columns(runs, num_models))
    return row


def vmap_rows(
    ctx: BenchContext,
    problems: Sequence[tuple[str, Sequence[int], int]] | None = None,
    num_models: int | None = None,
    epochs: int | None = None,
) -> list[dict]:
    """N small models trained at once: one ``jax.vmap``-ed program vs the same
    jitted training run N times, one after another.

    ``bound`` is the largest sequential/vmap ratio possible here: the
    sequential time over the time the N runs' FLOPs would take at the
    measured matmul peak. The profile of the vmapped run splits its kernel
    time into matmuls, the per-epoch shuffles (``sort``) and the rest.
    """
    if problems is None:
        problems = VMAP_PROBLEMS_QUICK if ctx.quick else VMAP_PROBLEMS_FULL
    num_models = num_models or (8 if ctx.quick else 64)
    epochs = epochs or (2 if ctx.quick else 5)
    rows = []
    for problem in problems:
        row = vmap_row(ctx, problem, num_models, epochs)
        rows.append(row)
        ctx.say(
            f"vmap {row['name']}: vmap {row['vmap_ms']:.1f} ms, sequential "
            f"{row['sequential_ms']:.1f} ms, ratio {row['sequential/vmap']:.2f} "
            f"(bound {row['bound']:.1f})"
        )
    return rows
