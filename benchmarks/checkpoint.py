"""Section ``checkpoint``: gradient checkpointing (recomputing segments of the
forward pass in the backward pass) of deep MLPs, plain vs checkpointed
segments: the temp memory XLA allocates, the measured peak RSS rise (in a
fresh process), FLOPs and time."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from benchmarks import xla
from benchmarks.context import BenchContext
from benchmarks.problems import dense_sizes_flops, loss_and_grad_fn, mlp_problem
from benchmarks.timing import interleaved_times, ratio_columns, time_columns
from jaxbp.remat import checkpointed_mlp, group_params

CHECKPOINT_DEPTHS_FULL = (8, 16, 32, 64)
CHECKPOINT_DEPTHS_QUICK = (4, 8)
ROOT = Path(__file__).resolve().parents[1]
#: The exit status of the RSS probe when the measurement is unavailable.
RSS_UNAVAILABLE = 3

#: The printed table: (row key, header, format).
COLUMNS = [
    ("name", "deep MLP", "{}"),
    ("segments", "segments", "{}"),
    ("plain_manual_temp_mib", "plain MiB", "{:.1f}"),
    ("ckpt_manual_temp_mib", "ckpt MiB", "{:.1f}"),
    ("manual_temp_ckpt/plain", "mem ratio", "{:.2f}"),
    ("plain_manual_ms", "plain ms", "{:.1f}"),
    ("ckpt_manual_ms", "ckpt ms", "{:.1f}"),
    ("manual_time_ckpt/plain", "time ratio", "{:.2f}"),
    ("plain_manual_xla_gflop", "plain GFLOP", "{:.2f}"),
    ("ckpt_manual_xla_gflop", "ckpt GFLOP", "{:.2f}"),
    ("plain_manual_rss_mib", "plain RSS", "{:.1f}"),
    ("ckpt_manual_rss_mib", "ckpt RSS", "{:.1f}"),
    ("ckpt_autodiff_temp_mib", "jax.ckpt MiB", "{:.1f}"),
    ("autodiff_time_ckpt/plain", "jax.ckpt time", "{:.2f}"),
]


def deep_mlp_variants(depth: int, width: int, batch: int, segment_size=None):
    """``({"plain": (model, params), "ckpt": (model, params)}, x, y)``: an MLP of
    ``depth`` hidden ReLU layers of ``width``, and the same layers grouped into
    checkpointed segments of ``segment_size`` (default ≈√depth) layers."""
    sizes = [width] * (depth + 1) + [10]
    plain, params, x, y = mlp_problem(sizes, batch)
    ckpt = checkpointed_mlp(sizes, "relu", segment_size, dtype=jnp.float32)
    variants = {"plain": (plain, params), "ckpt": (ckpt, group_params(params, ckpt))}
    return variants, x, y


def rss_probe(spec: str) -> None:
    """The fresh process of :func:`checkpoint_rss`: print the JSON of each
    variant's measured RSS rise, or the reason it is unavailable and exit
    with :data:`RSS_UNAVAILABLE`. ``spec`` is the JSON of its arguments."""
    variants, x, y = deep_mlp_variants(*json.loads(spec))
    out = {}
    try:
        for name, (model, p) in variants.items():
            fn = jax.jit(loss_and_grad_fn(model))
            out[f"{name}_manual_rss_mib"] = xla.peak_rss_delta_mib(
                functools.partial(fn, p, x, y)
            )
    except xla.Unavailable as error:
        print(error)
        sys.exit(RSS_UNAVAILABLE)
    print(json.dumps(out))


_RSS_COMMAND = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from benchmarks.checkpoint import rss_probe; rss_probe(sys.argv[2])"
)


def checkpoint_rss(depth, width, batch, segment_size=None) -> dict[str, float]:
    """The measured peak RSS rise of one call of the jitted manual gradient,
    plain and checkpointed, in a fresh Python process with glibc's mmap
    threshold fixed at 64 KiB (so that freed buffers are returned and the
    high-water mark shows the buffers live at the peak: outputs + temps).
    Raises :class:`xla.Unavailable` where it cannot be measured."""
    if not Path("/proc/self/clear_refs").exists():
        raise xla.Unavailable("no /proc/self/clear_refs (Linux only)")
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", JAX_PLATFORMS="cpu")
    spec = json.dumps([depth, width, batch, segment_size])
    done = subprocess.run(
        [sys.executable, "-c", _RSS_COMMAND, str(ROOT), spec],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode == RSS_UNAVAILABLE:
        raise xla.Unavailable(done.stdout.strip())
    if done.returncode != 0:
        raise RuntimeError(f"the RSS probe failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _variant_columns(variants, x, y, reps: int, min_seconds: float) -> dict:
    """Time (interleaved), memory and XLA FLOPs of each variant's manual and
    autodiff gradients, and the checkpointed/plain ratios."""
    compiled, calls = {}, {}
    for name, (model, p) in variants.items():
        for backprop in ("manual", "autodiff"):
            fn = jax.jit(loss_and_grad_fn(model, backprop))
            key = f"{name}_{backprop}"
            compiled[key] = fn.lower(p, x, y).compile()
            calls[key] = functools.partial(fn, p, x, y)
    times = interleaved_times(calls, reps=reps, min_seconds=min_seconds)
    out: dict[str, Any] = {}
    for key, c in compiled.items():
        out.update(time_columns(f"{key}_ms", times[key]))
        out.update(xla.attempt_columns(f"{key}_memory", xla.memory_columns, c, key))
        out[f"{key}_xla_gflop"] = xla.attempt(f"{key}_xla_gflop", xla.xla_gflop, c)
    for backprop in ("manual", "autodiff"):
        plain, ckpt = f"plain_{backprop}", f"ckpt_{backprop}"
        out.update(
            ratio_columns(f"{backprop}_time_ckpt/plain", times[ckpt], times[plain])
        )
        if f"{plain}_temp_mib" in out and f"{ckpt}_temp_mib" in out:
            plain_temp = out[f"{plain}_temp_mib"]
            out[f"{backprop}_temp_ckpt/plain"] = (
                out[f"{ckpt}_temp_mib"] / plain_temp if plain_temp else float("nan")
            )
    return out


def checkpoint_rows(
    ctx: BenchContext,
    depths: Sequence[int] | None = None,
    width: int | None = None,
    batch: int | None = None,
    segment_size: int | None = None,
    measure_rss: bool | None = None,
) -> list[dict]:
    """Deep MLPs (``depth`` hidden layers of ``width``): plain vs checkpointed
    segments of ≈√depth layers. Memory is XLA's temp allocation of the jitted
    gradient (activations kept for the backward pass live there); time is
    interleaved. Autodiff uses ``jax.checkpoint`` inside the same layer.
    ``measure_rss`` (default: not quick) adds the measured peak RSS rise of a
    call in a fresh process (:func:`checkpoint_rss`)."""
    if measure_rss is None:
        measure_rss = not ctx.quick
    if depths is None:
        depths = CHECKPOINT_DEPTHS_QUICK if ctx.quick else CHECKPOINT_DEPTHS_FULL
    width = width or (64 if ctx.quick else 512)
    batch = batch or (32 if ctx.quick else 256)
    rows = []
    for depth in depths:
        variants, x, y = deep_mlp_variants(depth, width, batch, segment_size)
        sizes = [width] * (depth + 1) + [10]
        row: dict[str, Any] = {
            "section": "checkpoint",
            "name": f"depth {depth} width {width} B{batch}",
            "depth": depth,
            "width": width,
            "batch": batch,
            "segments": [len(p) for p in variants["ckpt"][1]],
            "gradient_gflop": dense_sizes_flops(sizes, batch)[1] / 1e9,
        }
        reps = max(3, ctx.reps // 3)
        row.update(_variant_columns(variants, x, y, reps, ctx.min_seconds))
        if measure_rss:
            row.update(
                xla.attempt_columns(
                    "rss", checkpoint_rss, depth, width, batch, segment_size
                )
            )
        rows.append(row)
        ctx.say(
            f"checkpoint depth {depth}: temp {_mib(row, 'plain_manual_temp_mib')}"
            f" -> {_mib(row, 'ckpt_manual_temp_mib')} MiB, time x"
            f"{row['manual_time_ckpt/plain']:.2f}"
        )
    return rows


def _mib(row: dict, key: str) -> str:
    value = row.get(key)
    return f"{value:.1f}" if isinstance(value, float) else "n/a"
