"""Section ``dots``: each matrix product of the large MLP's gradient timed alone,
and the kernel library XLA:CPU runs it with."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import xla
from benchmarks.context import BenchContext
from benchmarks.gradient import GRADIENT_SIZES_FULL, GRADIENT_SIZES_QUICK
from benchmarks.problems import (
    dense_sizes_flops,
    gradient_functions,
    matmul_problem,
    mlp_problem,
    size_name,
)
from benchmarks.timing import interleaved_times

#: The printed table: (row key, header, format).
COLUMNS = [
    ("name", "matrix product", "{}"),
    ("kernel", "kernel", "{}"),
    ("gflop", "GFLOP", "{:.4f}"),
    ("ms", "ms", "{:.3f}"),
    ("gflops", "GFLOP/s", "{:.1f}"),
    ("of_peak", "of peak", "{:.0%}"),
]
#: The three kinds of product of a dense layer's forward and backward passes.
PRODUCTS = {
    "x W": lambda a, b: a @ b,
    "xT dy": lambda a, b: a.T @ b,
    "dy WT": lambda a, b: a @ b.T,
}


def layer_dots(sizes: Sequence[int], batch: int) -> dict[str, tuple]:
    """Name -> (kind, a, b, flops) for every product of the MLP's gradient
    (random operands of the right shapes; the first layer has no ``dx``)."""
    keys = iter(jax.random.split(jax.random.key(1), 3 * len(sizes)))

    def normal(*shape):
        return jax.random.normal(next(keys), shape, jnp.float32)

    dots = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w, xi, dy = normal(n_in, n_out), normal(batch, n_in), normal(batch, n_out)
        flops = 2 * batch * n_in * n_out
        dots[f"layer {i + 1} forward x W"] = ("x W", xi, w, flops)
        dots[f"layer {i + 1} dW = xT dy"] = ("xT dy", xi, dy, flops)
        if i > 0:
            dots[f"layer {i + 1} dx = dy WT"] = ("dy WT", dy, w, flops)
    return dots


def _dot_times(ctx: BenchContext, dots, gradient_call):
    """Seconds per call of each dot (less the dispatch floor), the whole
    gradient and the peak matmul, interleaved; and each dot's kernel."""
    calls, kernels = {}, {}
    products = {kind: jax.jit(fn) for kind, fn in PRODUCTS.items()}
    for name, (kind, a, b, _) in dots.items():
        compiled = products[kind].lower(a, b).compile()
        calls[name] = functools.partial(compiled, a, b)
        kernels[name] = xla.attempt(f"kernel of {name}", xla.dot_kernel, compiled)
    calls["gradient"] = gradient_call
    matmul, a, b, _ = matmul_problem(ctx.peak_n)
    calls["matmul"] = functools.partial(matmul, a, b)
    # a lone dot pays a dispatch the dots inside the gradient do not: take
    # off the time of a do-nothing call with two arguments (paired)
    floor = jax.jit(lambda a, b: a[0, 0], keep_unused=True)
    _, a0, b0, _ = next(iter(dots.values()))
    calls["floor"] = functools.partial(floor, a0, b0)
    times = interleaved_times(
        calls, reps=max(3, ctx.reps // 2), min_seconds=ctx.min_seconds
    )
    for name in dots:
        times[name] = np.maximum(times[name] - times["floor"], 1e-9)
    return times, kernels


def _dot_row(name: str, kernel: str, flops: float, seconds: float, peak: float):
    return {
        "section": "dots",
        "name": name,
        "kernel": kernel,
        "gflop": flops / 1e9,
        "ms": seconds * 1e3,
        "gflops": flops / seconds / 1e9,
        "of_peak": flops / seconds / peak,
    }


def dot_rows(
    ctx: BenchContext,
    config: tuple[Sequence[int], int] | None = None,
) -> list[dict]:
    """Every matrix product of one MLP gradient, timed alone (interleaved with
    the whole gradient and the peak matmul; less the dispatch floor): which
    dots hold the gradient back from the peak, and which kernel library
    XLA:CPU picks for each.

    Forward ``x W`` and backward ``dx = dy Wᵀ`` contract the last axis of the
    left operand; ``dW = xᵀ dy`` contracts the first (batch) axis of both, a
    layout XLA:CPU hands to a different library (see the ``kernel`` column)."""
    if config is None:
        config = GRADIENT_SIZES_QUICK[-1] if ctx.quick else GRADIENT_SIZES_FULL[-1]
    sizes, batch = config
    model, params, x, y = mlp_problem(sizes, batch)
    gradient = jax.jit(gradient_functions(model)["manual"])
    dots = layer_dots(sizes, batch)
    times, kernels = _dot_times(ctx, dots, functools.partial(gradient, params, x, y))
    peak = 2 * ctx.peak_n**3 / np.median(times["matmul"])
    label = size_name(sizes, batch)
    seconds = {name: float(np.median(times[name])) for name in (*dots, "gradient")}
    rows = [
        _dot_row(f"{label} {name}", kernels[name], dot[3], seconds[name], peak)
        for name, dot in dots.items()
    ]
    dot_seconds = sum(seconds[name] for name in dots)
    total = sum(dot[3] for dot in dots.values())
    _, gradient_flops = dense_sizes_flops(sizes, batch)
    rows.append(
        _dot_row(f"{label} sum of the dots alone", "", total, dot_seconds, peak)
    )
    rows.append(
        _dot_row(
            f"{label} whole gradient (manual)",
            "",
            gradient_flops,
            seconds["gradient"],
            peak,
        )
    )
    ctx.say(
        f"dots {label}: alone {dot_seconds * 1e3:.2f} ms, "
        f"gradient {seconds['gradient'] * 1e3:.2f} ms"
    )
    return rows
