"""Section ``vmap``: N small models trained in one ``jax.vmap``-ed program (what
:func:`jaxbp.train.sweep` compiles) vs N sequential runs of the same jitted
training, with the profile of both.

A run is :func:`jaxbp.train.run_steps` of the Adam train step over the seed's
:func:`jaxbp.train.batch_schedule` (given as an input, as sweep gives it: the
shuffles are not part of the timed program), from the seed's
:func:`jaxbp.train.init_params`; the training set is an argument shared by
the runs.
"""

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
from jaxbp.backprop import prepare
from jaxbp.train import (
    TrainState,
    batch_schedule,
    init_params,
    make_step,
    run_steps,
    sweep,
)

#: (dataset, MLP sizes, batch) of the vmap section: small models.
VMAP_PROBLEMS_FULL = (("blobs", (2, 16, 3), 16), ("digits", (64, 32, 10), 32))
VMAP_PROBLEMS_QUICK = (("blobs", (2, 16, 3), 16),)
LEARNING_RATE = 3e-3
#: vmap axes of a run's arguments: params, indices, keys per run; x, t shared.
RUN_AXES = (0, 0, 0, None, None)

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
    ("vmap_compile_s", "compile s", "{:.1f}"),
]


def _stack(trees):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def training_runs(dataset: str, sizes, batch: int, num_models: int, epochs: int):
    """The N runs (seeds 0..N-1) of a small MLP trained with Adam, as
    :func:`jaxbp.train.sweep` trains them: ``run_steps`` over each seed's
    ``batch_schedule``, from ``init_params``. ``vmap`` is one program for all
    (sweep's), ``sequential`` the single-run program called N times; both
    argument-less calls, with the pieces the measurements need."""
    train_x, train_y = data.load(dataset).train
    model = jaxbp.mlp(list(sizes))
    optimizer = optim.adam(LEARNING_RATE)
    seeds = list(range(num_models))
    params, state = init_params(model, seeds)
    x, t, _, state = prepare(model, None, train_x, train_y, "cross_entropy", state)
    schedule = _stack([batch_schedule(s, x.shape[0], batch, epochs) for s in seeds])
    step = make_step(model, loss="cross_entropy", optimizer=optimizer)

    def run(p, indices, keys, x, t):
        start = TrainState(p, state, optimizer.init(p))
        return run_steps(step, start, x, t, indices, keys)

    args = (params, schedule.indices, schedule.keys, x, t)
    per_run = [jax.tree.map(lambda a, i=i: a[i], args[:3]) + (x, t) for i in seeds]
    single, vmapped = jax.jit(run), jax.jit(jax.vmap(run, in_axes=RUN_AXES))
    compiled_vmapped = vmapped.lower(*args).compile()
    compiled_single = single.lower(*per_run[0]).compile()

    def sequential():
        return [single(*a) for a in per_run]

    def swept():
        return sweep(
            model,
            (train_x, train_y),
            optimizer=optimizer,
            params=params,
            state=state,
            seeds=seeds,
            batch_size=batch,
            epochs=epochs,
        )

    return {
        "vmap": functools.partial(compiled_vmapped, *args),
        "sequential": sequential,
        "sweep": swept,
        "compiled_vmap": compiled_vmapped,
        "compiled_single": compiled_single,
        "single_call": functools.partial(compiled_single, *per_run[0]),
        "run": run,
        "args": args,
        "single_args": per_run[0],
        "total_steps": schedule.indices.shape[1],
    }


def _compile_columns(runs: dict, compile_reps: int) -> dict[str, float]:
    single = compile_seconds(runs["run"], runs["single_args"], reps=compile_reps)
    vmapped = compile_seconds(
        jax.vmap(runs["run"], in_axes=RUN_AXES), runs["args"], reps=compile_reps
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
    return {
        "single_kernel_ms": single["kernel_us"] / 1e3,
        "vmap_kernel_per_model_ms": total / num_models / 1e3,
        # of a single run's time, the part in kernels (the rest, launching
        # and dispatch, is what vmap removes)
        "single_kernel_share": single["kernel_us"] / single["wall_us"],
        "matmul_share": profile["matmul_us"] / total,
        "other_share": profile["other_us"] / total,
        "top_ops": top_ops(profile["ops"], total),
    }


def vmap_row(ctx: BenchContext, problem, num_models: int, epochs: int) -> dict:
    """One problem: vmapped vs sequential runs, timed interleaved with the
    peak matmul; the bound, compile times and profiles."""
    dataset, sizes, batch = problem
    runs = training_runs(dataset, sizes, batch, num_models, epochs)
    vmapped, _ = runs["vmap"]()
    sequential = _stack([final for final, _ in runs["sequential"]()])
    agree = max_difference(vmapped.params, sequential.params)
    sweep_agree = max_difference(vmapped.params, runs["sweep"]().params)
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
    flops = num_models * runs["total_steps"] * dense_sizes_flops(sizes, batch)[1]
    peak = matmul_flops / float(np.median(times["matmul"]))
    row: dict[str, Any] = {
        "section": "vmap",
        "name": f"{num_models} x {size_name(sizes, batch)} {dataset}",
        "models": num_models,
        "epochs": epochs,
        "steps_per_epoch": runs["total_steps"] // epochs,
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
    row["sweep_param_diff"] = sweep_agree
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
    time into matmuls and the rest. ``max_param_diff`` compares the vmapped
    and sequential runs' final parameters, ``sweep_param_diff`` the vmapped
    program's with :func:`jaxbp.train.sweep`'s (the program timed is sweep's).
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
