"""Section ``epoch``: an epoch of Adam on the digits as one ``lax.scan`` vs a
Python loop of jitted steps (device batches, NumPy batches), the dispatch
floor, a profile of the scan's kernels, and the bound on the ratio; the train
step's compile time and XLA's memory analysis of it."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

import jaxbp
from benchmarks import xla
from benchmarks.context import BenchContext
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
from jaxbp.train import TrainState, epoch_batches, make_epoch, make_step, train_keys

#: The digits MLP of the training sections (the gradient section's first row).
EPOCH_MLP = (64, 128, 128, 10)
CONTENDERS = ("scan", "loop", "loop_numpy", "floor")

#: The printed table: (row key, header, format).
COLUMNS = [
    ("name", "epoch", "{}"),
    ("steps", "steps", "{}"),
    ("scan_ms", "scan ms", "{:.2f}"),
    ("loop_ms", "loop ms", "{:.2f}"),
    ("loop/scan", "loop/scan", "{:.2f}"),
    ("loop_numpy/scan", "numpy loop/scan", "{:.2f}"),
    ("bound", "bound", "{:.2f}"),
    ("scan_step_us", "scan us/step", "{:.1f}"),
    ("kernel_share", "in kernels", "{:.0%}"),
    ("launches_per_step", "launches/step", "{:.0f}"),
    ("dispatch_step_us", "dispatch us/step", "{:.1f}"),
    ("floor_step_us", "floor us/step", "{:.1f}"),
    ("at_peak_step_us", "at peak us/step", "{:.1f}"),
    ("scan_of_peak", "of peak", "{:.0%}"),
    ("scan_compile_s", "compile s", "{:.2f}"),
    ("step_compile_s", "step compile s", "{:.2f}"),
    ("step_peak_mib", "step peak MiB", "{:.2f}"),
]


def top_ops(ops: Mapping[str, float], total: float, k: int = 6) -> dict[str, float]:
    """The ``k`` largest entries of ``ops`` (slowest first) as fractions of ``total``."""
    return {op: round(us / total, 3) for op, us in list(ops.items())[:k]}


def epoch_problem(sizes: Sequence[int], batch: int) -> dict[str, Any]:
    """The digits, an MLP of ``sizes`` with Adam: the train step, the initial
    TrainState, the prepared (x, t), the scanned epoch's arguments, and the
    batches and keys of that epoch (for a Python loop to replay)."""
    x, y = data.load("digits").train
    model = jaxbp.mlp(list(sizes))
    optimizer = optim.adam(1e-3)
    params, state = model.init_with_state(jax.random.key(0))
    x, t, _, state = prepare(model, params, x, y, "cross_entropy", state)
    train_state = TrainState(params, state, optimizer.init(params))
    n = x.shape[0]
    _, train_key = train_keys(jax.random.key(0))
    # epoch 1's batches and step keys, as the scanned epoch draws them
    index, keys = epoch_batches(train_key, 1, n, batch)
    return {
        "step": make_step(model, loss="cross_entropy", optimizer=optimizer),
        "n": n,
        "train_state": train_state,
        "x": x,
        "t": t,
        "scan_args": (train_state, x, t, train_key, 1),
        "index": np.asarray(index),
        "keys": list(keys),
    }


def epoch_contenders(problem: dict, batch: int) -> dict[str, Any]:
    """The scanned epoch and the loops that replay it, as argument-less calls."""
    p = problem
    scan_epoch = jax.jit(make_epoch(p["step"], p["n"], batch))
    batches = [(p["x"][i], p["t"][i]) for i in p["index"]]
    x_host, t_host = np.asarray(p["x"]), np.asarray(p["t"])
    jit_step = jax.jit(p["step"])
    floor = jax.jit(lambda s, xb, tb, k: xb[0, 0], keep_unused=True)

    def loop():
        state = p["train_state"]
        for (xb, tb), key in zip(batches, p["keys"], strict=True):
            state, _ = jit_step(state, xb, tb, key)
        return state

    def loop_numpy():
        state = p["train_state"]
        for i, key in zip(p["index"], p["keys"], strict=True):
            state, _ = jit_step(state, x_host[i], t_host[i], key)
        return state

    def floor_loop():
        state = p["train_state"]
        return [floor(state, xb, tb, k) for (xb, tb), k in zip(batches, p["keys"])]

    return {
        "scan": functools.partial(scan_epoch, *p["scan_args"]),
        "loop": loop,
        "loop_numpy": loop_numpy,
        "floor": floor_loop,
    }


def _bound_columns(times, num_steps: int, step_flops: int, peak: float) -> dict:
    """Per-step times, the dispatch cost, and the bound on loop/scan: the
    loop's per-step overhead over the step's FLOPs at the matmul peak."""
    per_step = {k: float(np.median(times[k])) / num_steps * 1e6 for k in CONTENDERS}
    dispatch_us = per_step["loop"] - per_step["scan"]
    at_peak_us = step_flops / peak * 1e6
    out = {f"{k}_step_us": per_step[k] for k in CONTENDERS}
    out.update(
        {
            "dispatch_step_us": dispatch_us,
            "step_gflop": step_flops / 1e9,
            "scan_gflops": step_flops / per_step["scan"] / 1e3,
            "peak_gflops": peak / 1e9,
            "scan_of_peak": step_flops / per_step["scan"] * 1e6 / peak,
            "at_peak_step_us": at_peak_us,
            "bound": 1 + dispatch_us / at_peak_us,
        }
    )
    return out


def _step_columns(problem: dict, batch: int, compile_reps: int) -> dict:
    """Compile times of the scanned epoch and of the step alone (as ``fit``
    and the loop compile it), and XLA's memory analysis of the step."""
    p = problem
    step_args = (p["train_state"], p["x"][p["index"][0]], p["t"][p["index"][0]])
    step_args = (*step_args, p["keys"][0])
    epoch_fn = make_epoch(p["step"], p["n"], batch)
    compiled_step = jax.jit(p["step"]).lower(*step_args).compile()
    return {
        "scan_compile_s": compile_seconds(epoch_fn, p["scan_args"], compile_reps)[
            "compile_s"
        ],
        "step_compile_s": compile_seconds(p["step"], step_args, compile_reps)[
            "compile_s"
        ],
        **xla.attempt_columns("step_memory", xla.memory_columns, compiled_step, "step"),
    }


def _profile_columns(problem: dict, batch: int, num_steps: int) -> dict:
    """From a profiler trace of the scanned epoch: its share of time in
    kernels, the kernel time and launches per step, the slowest ops."""
    compiled = jax.jit(make_epoch(problem["step"], problem["n"], batch))
    compiled = compiled.lower(*problem["scan_args"]).compile()
    call = functools.partial(compiled, *problem["scan_args"])
    profile = xla.attempt("profile", xla.kernel_profile, call, compiled, 5)
    if isinstance(profile, str):
        return {"profile": profile}
    return {
        "profiled_step_us": profile["wall_us"] / num_steps,
        "kernel_share": profile["kernel_us"] / profile["wall_us"],
        "kernel_step_us": profile["kernel_us"] / num_steps,
        "matmul_kernel_step_us": profile["matmul_us"] / num_steps,
        "launches_per_step": profile["kernel_launches"] / num_steps,
        "top_ops": top_ops(profile["ops"], profile["kernel_us"]),
    }


def epoch_rows(
    ctx: BenchContext, sizes: Sequence[int] = EPOCH_MLP, batch: int = 32
) -> list[dict]:
    """An epoch of Adam on the digits: one ``lax.scan`` vs a Python loop of
    jitted steps, with what bounds the ratio.

    The contenders run the same steps on the same mini-batches and keys (the
    loop replays the scan's shuffle; their parameters are compared):

    - ``scan``: ``jax.jit(make_epoch(step, ...))``, the epoch as one program;
    - ``loop``: one jitted step per batch, the batches sliced in advance on
      the device (so the loop pays only the dispatch of each step);
    - ``loop_numpy``: the same loop fed NumPy batches sliced per step, as a
      data loader feeds it (each step also copies its batch to the device);
    - ``floor``: the loop calling a do-nothing jitted function with the
      step's arguments: the dispatch floor of a Python loop.

    ``bound`` is the largest loop/scan ratio possible here: the loop's
    per-step overhead over the time the step's FLOPs would take at the
    measured matmul peak (``1 + dispatch / (flops / peak)``). The profile of
    the scan gives the kernel time per step (``kernel_us``) and its launches.
    """
    problem = epoch_problem(sizes, batch)
    calls = epoch_contenders(problem, batch)
    scanned, _ = calls["scan"]()
    agree = max_difference(scanned.params, calls["loop"]().params)
    matmul, a, b, matmul_flops = matmul_problem(ctx.peak_n)
    calls["matmul"] = functools.partial(matmul, a, b)
    times = interleaved_times(calls, reps=ctx.reps, min_seconds=ctx.min_seconds)
    num_steps = len(problem["keys"])
    peak = matmul_flops / float(np.median(times["matmul"]))
    row: dict[str, Any] = {
        "section": "epoch",
        "name": f"{size_name(sizes, batch)} digits Adam",
        "steps": num_steps,
        "batch": batch,
    }
    for k in CONTENDERS:
        row.update(time_columns(f"{k}_ms", times[k]))
    row.update(ratio_columns("loop/scan", times["loop"], times["scan"]))
    row.update(ratio_columns("loop_numpy/scan", times["loop_numpy"], times["scan"]))
    row.update(
        _bound_columns(times, num_steps, dense_sizes_flops(sizes, batch)[1], peak)
    )
    row.update(_step_columns(problem, batch, ctx.compile_reps))
    row["max_param_diff"] = agree
    row.update(_profile_columns(problem, batch, num_steps))
    ctx.say(
        f"epoch {row['name']}: scan {row['scan_ms']:.2f} ms, loop "
        f"{row['loop_ms']:.2f} ms, loop/scan {row['loop/scan']:.2f} "
        f"(bound {row['bound']:.2f})"
    )
    return [row]
