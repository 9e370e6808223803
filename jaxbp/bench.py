"""Benchmarks: the hand-written gradient against autodiff, the matmul peak, memory,
and training: an epoch as ``lax.scan``, many models under ``vmap``.

Every number is measured in one process, on the default JAX device, after a
warm-up call (compilation), timing only after ``block_until_ready()``. The
contenders of one comparison are timed *interleaved*: each repetition times
every contender once, in an order shuffled anew for each repetition, so slow
drifts of the machine (other processes, frequency) fall on all of them
alike. A repetition times ``number`` back-to-back calls (enough to last
``min_seconds``), each blocked on, and divides. We report the median over
repetitions and the interquartile range (q1, q3); a ratio is the median of the
per-repetition ratios (paired, same repetition) with its quartiles.

Sections (each a function ``ctx -> list of row dicts`` in ``BENCHMARKS``; add a
function there to add rows):

- ``matmul``: the measured peak, large square float32 ``x @ w``.
- ``gradient``: ``jaxbp.loss_and_grad`` manual vs ``backprop="autodiff"``
  (``jax.value_and_grad``) vs a plain-JAX reference MLP under
  ``jax.value_and_grad``, all jitted; the forward pass alone (``jaxbp.loss``);
  a do-nothing jitted call (the dispatch floor); the FLOP rate against a
  ``PEAK_N``² matmul timed in the same repetitions (a paired ratio, robust
  to the load changing); compile time; XLA's memory analysis of the gradient
  and of an SGD step.
- ``profile``: a JAX profiler trace of the gradients: host (dispatch) time
  against XLA execution, matmul kernels against the rest.
- ``dots``: each matrix product of the large MLP's gradient timed alone, and
  the kernel library XLA:CPU runs it with.
- ``checkpoint``: deep MLPs, plain vs checkpointed segments
  (``jaxbp.remat``): the temp memory XLA allocates, the measured
  peak RSS rise (fresh process), FLOPs and time.
- ``epoch``: an epoch of Adam on the digits as one ``lax.scan`` vs a Python
  loop of jitted steps (device batches, NumPy batches), the dispatch floor,
  a profile of the scan's kernels, and the bound on the ratio; the train
  step's compile time and XLA's memory analysis of it.
- ``vmap``: N small models trained in one ``jax.vmap``-ed program vs N
  sequential runs of the same jitted training, with the profile of both.

FLOPs of a gradient are counted, not taken from XLA: a dense layer's forward
is ``2·B·n_in·n_out``; the backward pass computes ``dW = xᵀ dy`` and
``dx = dy Wᵀ``, two more of the same size, except that the first layer's
``dx`` (the gradient for the input data) is not needed. Elementwise work
(activations, bias, softmax) is not counted: it is O(B·n), not O(B·n²).

``main(argv)`` is ``python experiments/benchmark.py`` and ``jaxbp bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import itertools
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from jaxbp.remat import checkpointed_mlp, group_params

MiB = 2**20
#: The size of the square float32 matmul that stands for the peak FLOP rate.
PEAK_N = 2048

# ------------------------------------------------------------------ settings


@dataclasses.dataclass
class BenchContext:
    """Settings of a run, and results shared between sections (the matmul peak)."""

    quick: bool = False
    reps: int = 31
    min_seconds: float = 0.02
    compile_reps: int = 3
    peak_n: int = PEAK_N
    log: Callable[[str], None] | None = None
    shared: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool = False, **kwargs) -> BenchContext:
        if quick:
            defaults = {"reps": 9, "min_seconds": 0.005, "compile_reps": 1}
        else:
            defaults = {"reps": 31, "min_seconds": 0.02, "compile_reps": 3}
        defaults.update(kwargs)
        return cls(quick=quick, **defaults)

    def say(self, message: str) -> None:
        if self.log is not None:
            self.log(message)


# ------------------------------------------------------------------ timing


def _block(fn: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: jax.block_until_ready(fn())


def calibrate(fn: Callable[[], Any], min_seconds: float) -> int:
    """How many back-to-back calls of ``fn`` (already warm) last ``min_seconds``."""
    fn = _block(fn)
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    if once >= min_seconds:
        return 1
    # a second, better estimate from a few calls
    n = max(1, min(1000, int(0.2 * min_seconds / max(once, 1e-7))))
    start = time.perf_counter()
    for _ in range(n):
        fn()
    once = (time.perf_counter() - start) / n
    return max(1, math.ceil(min_seconds / max(once, 1e-7)))


@contextlib.contextmanager
def _gc_off():
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def interleaved_times(
    fns: Mapping[str, Callable[[], Any]],
    *,
    reps: int,
    min_seconds: float = 0.02,
    warmup: int = 2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Seconds per call of each function, one sample per repetition, interleaved.

    Each function is called ``warmup`` times first (compilation, caches). Each
    repetition then times every function once, ``number`` calls each (its own
    ``number``, chosen so a sample lasts about ``min_seconds``), blocking on
    every result, in an order drawn at random for each repetition (a fixed
    rotation would always run the same contender right after, say, the big
    matmul that flushed the caches).
    """
    names = list(fns)
    blocked = {k: _block(f) for k, f in fns.items()}
    for f in blocked.values():
        for _ in range(warmup):
            f()
    numbers = {k: calibrate(fns[k], min_seconds) for k in names}
    samples: dict[str, list[float]] = {k: [] for k in names}
    rng = np.random.default_rng(seed)
    with _gc_off():
        for _ in range(reps):
            for i in rng.permutation(len(names)):
                k = names[i]
                f, n = blocked[k], numbers[k]
                start = time.perf_counter()
                for _ in range(n):
                    f()
                samples[k].append((time.perf_counter() - start) / n)
    return {k: np.asarray(v) for k, v in samples.items()}


def quartiles(values) -> tuple[float, float, float]:
    """(q1, median, q3)."""
    q1, med, q3 = np.percentile(np.asarray(values, np.float64), [25, 50, 75])
    return float(q1), float(med), float(q3)


def time_columns(prefix: str, seconds, scale: float = 1e3) -> dict[str, float]:
    """``{prefix: median, prefix_q1: q1, prefix_q3: q3}`` in ms (``scale``)."""
    q1, med, q3 = quartiles(np.asarray(seconds) * scale)
    return {prefix: med, f"{prefix}_q1": q1, f"{prefix}_q3": q3}


def ratio_columns(prefix: str, numerator, denominator) -> dict[str, float]:
    """The median and quartiles of the paired per-repetition ratios."""
    q1, med, q3 = quartiles(np.asarray(numerator) / np.asarray(denominator))
    return {prefix: med, f"{prefix}_q1": q1, f"{prefix}_q3": q3}


# ------------------------------------------------------------------ XLA facts


def compile_seconds(fn, args, reps: int = 3) -> dict[str, float]:
    """Median seconds to trace+lower and to compile ``jax.jit(fn)`` on ``args``,
    each time afresh (a new function object, so no cache is hit)."""
    lower_s, compile_s = [], []
    for _ in range(max(1, reps)):
        fresh = jax.jit(lambda *a: fn(*a))
        start = time.perf_counter()
        lowered = fresh.lower(*args)
        middle = time.perf_counter()
        lowered.compile()
        end = time.perf_counter()
        lower_s.append(middle - start)
        compile_s.append(end - middle)
    return {
        "lower_s": float(np.median(lower_s)),
        "compile_s": float(np.median(compile_s)),
    }


def memory_columns(compiled, prefix: str) -> dict[str, float]:
    """XLA's memory analysis of a compiled function, in MiB (what XLA says;
    empty when the backend says nothing).

    ``temp`` is the block XLA allocates for intermediates; ``peak`` is what
    the program holds at once while it runs: its arguments, its outputs less
    those that reuse (alias) a donated argument's buffer, and ``temp``. Temp
    alone can mislead: without donation XLA may place intermediates in the
    output buffers before the outputs are written, and report almost no temp.
    """
    try:
        stats = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        stats = None
    if stats is None:
        return {}
    out = {}
    for field in ("temp", "argument", "output", "alias"):
        value = getattr(stats, f"{field}_size_in_bytes", None)
        if value is not None:
            out[f"{prefix}_{field}_mib"] = value / MiB
    if all(f"{prefix}_{f}_mib" in out for f in ("temp", "argument", "output", "alias")):
        out[f"{prefix}_peak_mib"] = (
            out[f"{prefix}_argument_mib"]
            + out[f"{prefix}_output_mib"]
            - out[f"{prefix}_alias_mib"]
            + out[f"{prefix}_temp_mib"]
        )
    return out


def xla_flops(compiled) -> float | None:
    """FLOPs by XLA's cost analysis (counts elementwise work too)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        return None
    return float(cost["flops"])


def hlo_op_count(compiled) -> int | None:
    """Instructions in the entry computation of the optimized HLO (kernels run
    one after the other: each costs a launch, which dominates tiny models)."""
    try:
        text = compiled.as_text()
    except Exception:  # noqa: BLE001
        return None
    entry = text[text.rfind("\nENTRY ") :]
    body = entry[entry.find("{") + 1 : entry.find("\n}")]
    skip = ("parameter(", "constant(", "tuple(", "get-tuple-element(", "bitcast(")
    lines = [ln for ln in body.splitlines() if " = " in ln]
    return sum(1 for ln in lines if not any(s in ln for s in skip))


def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def peak_rss_delta_mib(fn: Callable[[], Any], reps: int = 3) -> float | None:
    """Measured rise of the resident set size while ``fn()`` runs, in MiB (the
    smallest of ``reps`` calls), by resetting the kernel's high-water mark
    (``/proc/self/clear_refs``); None where that is not possible (not Linux).

    It counts outputs as well as temporaries, and only pages the allocator
    has to fetch from the kernel: meaningful only when freed buffers go back
    to the kernel, i.e. with glibc's mmap threshold fixed
    (``MALLOC_MMAP_THRESHOLD_``, as ``checkpoint_rss`` sets); otherwise malloc
    keeps freed memory and the rise after a warm-up call is about 0.
    """
    fn = _block(fn)
    fn()
    deltas = []
    for _ in range(reps):
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            return None
        before = _status_kib("VmRSS")
        result = fn()
        peak = _status_kib("VmHWM")
        del result
        if before is None or peak is None:
            return None
        deltas.append((peak - before) / 1024)
    return float(min(deltas))


_RSS_PROBE = """
import json, sys
import jax, jax.numpy as jnp
import jaxbp
from jaxbp import bench
from jaxbp.remat import checkpointed_mlp, group_params
depth, width, batch, segment_size = json.loads(sys.argv[1])
sizes = [width] * (depth + 1) + [10]
plain, params, x, y = bench.mlp_problem(sizes, batch)
ckpt = checkpointed_mlp(sizes, "relu", segment_size, dtype=jnp.float32)
out = {}
for name, model, p in (("plain", plain, params),
                       ("ckpt", ckpt, group_params(params, ckpt))):
    fn = jax.jit(lambda p, m=model: jaxbp.loss_and_grad(m, p, x, y))
    out[f"{name}_manual_rss_mib"] = bench.peak_rss_delta_mib(lambda: fn(p))
print(json.dumps(out))
"""


def checkpoint_rss(depth, width, batch, segment_size=None) -> dict[str, float]:
    """The measured peak RSS rise of one call of the jitted manual gradient,
    plain and checkpointed, in a fresh Python process with glibc's mmap
    threshold fixed at 64 KiB (so that freed buffers are returned and the
    high-water mark shows the buffers live at the peak: outputs + temps).
    Empty where it cannot be measured."""
    import subprocess

    if not Path("/proc/self/clear_refs").exists():
        return {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", JAX_PLATFORMS="cpu")
    spec = json.dumps([depth, width, batch, segment_size])
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RSS_PROBE, spec],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return {}


# ------------------------------------------------------------------ problems


def dense_sizes_flops(sizes: Sequence[int], batch: int) -> tuple[int, int]:
    """(forward, gradient) FLOPs of an MLP's dense layers, counted by hand:
    forward 2·B·Σ n_in·n_out; gradient = forward + backward, backward =
    2 × forward − the first layer's dx (2·B·n_0·n_1)."""
    pairs = list(itertools.pairwise(sizes))
    forward = sum(2 * batch * a * b for a, b in pairs)
    first_dx = 2 * batch * pairs[0][0] * pairs[0][1]
    return forward, forward + 2 * forward - first_dx


def mlp_problem(sizes: Sequence[int], batch: int, *, seed: int = 0, dtype="float32"):
    """A ReLU MLP with its params, inputs and integer labels, all of ``dtype``
    (set explicitly: the result does not depend on jax_enable_x64)."""
    dtype = jnp.dtype(dtype)
    model = jaxbp.mlp(list(sizes), "relu", dtype=dtype)
    params = model.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, sizes[0])), dtype)
    y = jnp.asarray(rng.integers(0, sizes[-1], size=batch), jnp.int32)
    return model, params, x, y


def reference_loss(params, x, y):
    """The same ReLU MLP and cross-entropy in a dozen lines of plain JAX (no
    jaxbp), the baseline a JAX user would write and hand to jax.value_and_grad."""
    dense = [p for p in params if p != ()]
    h = x
    for i, p in enumerate(dense):
        h = h @ p["w"] + p["b"]
        if i < len(dense) - 1:
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))


def gradient_functions(model) -> dict[str, Callable]:
    """The contenders, as functions of (params, x, y) (not yet jitted)."""

    def manual(p, x, y):
        return jaxbp.loss_and_grad(model, p, x, y, loss="cross_entropy")

    def autodiff(p, x, y):
        return jaxbp.loss_and_grad(
            model, p, x, y, loss="cross_entropy", backprop="autodiff"
        )

    def reference(p, x, y):
        return jax.value_and_grad(reference_loss)(p, x, y)

    def forward(p, x, y):
        return jaxbp.loss(model, p, x, y, loss="cross_entropy")

    return {
        "manual": manual,
        "autodiff": autodiff,
        "reference": reference,
        "forward": forward,
    }


def _size_name(sizes, batch) -> str:
    return "-".join(map(str, sizes)) + f" B{batch}"


# ------------------------------------------------------------------ sections


def _matmul_problem(n: int):
    ka, kb = jax.random.split(jax.random.key(n))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    return jax.jit(jnp.matmul), a, b, 2 * n**3


def matmul_rows(ctx: BenchContext, sizes: Sequence[int] | None = None) -> list[dict]:
    """The measured matmul peak: float32 ``x @ w`` on square matrices.

    The largest FLOP rate is stored as ``ctx.shared["peak_gflops"]`` for the
    gradient rows."""
    if sizes is None:
        sizes = (1024, ctx.peak_n) if ctx.quick else (1024, ctx.peak_n, 4096)
    problems = {n: _matmul_problem(n) for n in sizes}
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


def gradient_rows(
    ctx: BenchContext,
    configs: Sequence[tuple[Sequence[int], int]] | None = None,
) -> list[dict]:
    """Manual vs autodiff vs reference gradients and the forward pass, per MLP size."""
    if configs is None:
        configs = GRADIENT_SIZES_QUICK if ctx.quick else GRADIENT_SIZES_FULL
    peak = ctx.shared.get("peak_gflops")
    rows = []
    for sizes, batch in configs:
        model, params, x, y = mlp_problem(sizes, batch)
        fns = gradient_functions(model)
        args = (params, x, y)
        jitted = {k: jax.jit(f) for k, f in fns.items()}
        # a jitted call that does (almost) nothing with the same arguments:
        # Python dispatch and argument handling, the floor of any call
        jitted["floor"] = jax.jit(lambda p, x, y: x[0, 0], keep_unused=True)
        compiled = {k: f.lower(*args).compile() for k, f in jitted.items()}
        calls = {k: functools.partial(f, *args) for k, f in jitted.items()}
        # the matmul peak, timed in the same repetitions: "of peak" is a paired
        # ratio, robust to the load of the machine changing during the run
        n = ctx.peak_n
        matmul, a, b, matmul_flops = _matmul_problem(n)
        calls["matmul"] = functools.partial(matmul, a, b)
        times = interleaved_times(calls, reps=ctx.reps, min_seconds=ctx.min_seconds)
        forward_flops, gradient_flops = dense_sizes_flops(sizes, batch)
        row: dict[str, Any] = {
            "section": "gradient",
            "name": _size_name(sizes, batch),
            "sizes": list(sizes),
            "batch": batch,
            "dtype": "float32",
        }
        for k in ("manual", "autodiff", "reference", "forward", "floor"):
            row.update(time_columns(f"{k}_ms", times[k]))
        row.update(ratio_columns("manual/autodiff", times["manual"], times["autodiff"]))
        row.update(
            ratio_columns("manual/reference", times["manual"], times["reference"])
        )
        row.update(ratio_columns("manual/forward", times["manual"], times["forward"]))
        row.update(
            ratio_columns("autodiff/forward", times["autodiff"], times["forward"])
        )
        row["gradient_gflop"] = gradient_flops / 1e9
        row["forward_gflop"] = forward_flops / 1e9
        row["peak_n"] = n
        row.update(time_columns("matmul_ms", times["matmul"]))
        row["matmul_gflops"] = matmul_flops / np.median(times["matmul"]) / 1e9
        for k in ("manual", "autodiff", "reference", "forward"):
            flops = forward_flops if k == "forward" else gradient_flops
            row[f"{k}_gflops"] = flops / np.median(times[k]) / 1e9
            # (flops / t_k) / (matmul_flops / t_matmul), per repetition
            row.update(
                ratio_columns(
                    f"{k}_of_peak",
                    times["matmul"] * (flops / matmul_flops),
                    times[k],
                )
            )
            if peak:
                row[f"{k}_of_section_peak"] = row[f"{k}_gflops"] / peak
        for k in ("manual", "autodiff", "forward"):
            row[f"{k}_xla_gflop"] = (xla_flops(compiled[k]) or float("nan")) / 1e9
            row[f"{k}_hlo_ops"] = hlo_op_count(compiled[k])
        for k in ("manual", "autodiff"):
            row.update(memory_columns(compiled[k], k))
            c = compile_seconds(fns[k], args, reps=ctx.compile_reps)
            row[f"{k}_lower_s"] = c["lower_s"]
            row[f"{k}_compile_s"] = c["compile_s"]
        step = jax.jit(_sgd_step(model), donate_argnums=0)
        step_compiled = step.lower(*args).compile()
        row.update(memory_columns(step_compiled, "step"))
        rows.append(row)
        ctx.say(
            f"gradient {row['name']}: manual {row['manual_ms']:.3f} ms, "
            f"manual/autodiff {row['manual/autodiff']:.3f}"
        )
    return rows


def _sgd_step(model, learning_rate: float = 1e-3):
    """A training step: the manual gradient and a plain SGD update."""

    def step(params, x, y):
        value, grads = jaxbp.loss_and_grad(model, params, x, y)
        new = jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)
        return new, value

    return step


def _hlo_op_classes(compiled) -> dict[str, str]:
    """Instruction name -> "matmul" (a dot, or a fusion that calls a computation
    with a dot), "control" (a while loop, call or conditional: its time is that
    of the kernels inside it) or "other", for every instruction of the
    optimized HLO (names are unique in a module; a loop body's kernels show up
    in a trace under their own names)."""
    text = compiled.as_text()
    has_dot: dict[str, bool] = {}
    for block in text.split("\n\n"):
        head = block.strip().splitlines()[0] if block.strip() else ""
        match = re.match(r"^(?:ENTRY )?%?([\w.\-]+) ", head)
        if match:
            has_dot[match.group(1)] = " dot(" in block
    classes = {}
    for line in text.splitlines():
        match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*? (\w[\w-]*)\(", line)
        if not match:
            continue
        name, opcode = match.groups()
        calls = re.search(r"calls=%([\w.\-]+)", line)
        if opcode in ("while", "call", "conditional"):
            classes[name] = "control"
        elif opcode == "dot" or (calls is not None and has_dot.get(calls.group(1))):
            classes[name] = "matmul"
        else:
            classes[name] = "other"
    return classes


def _profiler_trace(call: Callable[[], Any], runs: int):
    """``(kernel events, wall seconds per call)`` of ``runs`` calls of ``call``
    (blocking) under the JAX profiler, or None where the profiler or its trace
    format is not available. A kernel event is a perfetto ``X`` event with an
    ``hlo_op`` argument: one XLA kernel (thunk) running."""
    import glob
    import gzip
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            with jax.profiler.trace(tmp, create_perfetto_trace=True):
                start = time.perf_counter()
                for _ in range(runs):
                    call()
                wall = (time.perf_counter() - start) / runs
            (path,) = glob.glob(f"{tmp}/**/perfetto_trace.json.gz", recursive=True)
            with gzip.open(path) as f:
                events = json.load(f)["traceEvents"]
    except Exception:  # noqa: BLE001 - profiling is a diagnostic, never fatal
        return None
    kernels = [
        e for e in events if e.get("ph") == "X" and "hlo_op" in (e.get("args") or {})
    ]
    return kernels, wall


def kernel_profile(call: Callable[[], Any], compiled, runs: int) -> dict | None:
    """Microseconds per call spent in XLA kernels, from a profiler trace of
    ``runs`` calls: ``wall_us`` (timed around the calls, profiler on),
    ``kernel_us`` (summed kernel durations; loops count through the kernels
    in their bodies), ``matmul_us`` / ``other_us`` by kind, ``kernel_launches``
    per call, and ``ops``: each HLO op's microseconds per call."""
    classes = _hlo_op_classes(compiled)
    traced = _profiler_trace(_block(call), runs)
    if traced is None:
        return None
    events, wall = traced
    ops: dict[str, float] = {}
    launches = 0
    for e in events:
        op = e["args"]["hlo_op"]
        if classes.get(op, "other") == "control":
            continue
        ops[op] = ops.get(op, 0.0) + float(e["dur"]) / runs
        launches += 1
    if not ops:
        return None
    by_kind = {"matmul": 0.0, "other": 0.0}
    for op, us in ops.items():
        by_kind[classes.get(op, "other")] += us
    return {
        "wall_us": wall * 1e6,
        "kernel_us": sum(ops.values()),
        "matmul_us": by_kind["matmul"],
        "other_us": by_kind["other"],
        "kernel_launches": launches / runs,
        "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
    }


def op_profile(fn, args, *, seconds: float = 1.0, max_steps: int = 200):
    """Where the time of a jitted ``fn(*args)`` goes, from a JAX profiler trace.

    Returns per-call microseconds: ``wall`` (timed around the calls, profiler
    on), ``execute`` (XLA running the program: first kernel start to last
    kernel end, median over runs), ``matmul`` / ``other`` (summed kernel
    times, by kind) and the slowest ``ops``; None if the profiler or its trace
    format is not available. ``wall - execute`` is the host side: Python
    dispatch, argument handling, launching, waiting.
    """
    jitted = jax.jit(fn)
    compiled = jitted.lower(*args).compile()
    classes = _hlo_op_classes(compiled)
    call = _block(functools.partial(jitted, *args))
    call()
    start = time.perf_counter()
    call()
    steps = int(max(3, min(max_steps, seconds / (time.perf_counter() - start))))
    traced = _profiler_trace(call, steps)
    if traced is None:
        return None
    events, wall = traced
    ops: dict[str, float] = {}
    spans: dict[str, list[float]] = {}  # run id -> [first start, last end]
    for e in events:
        args = e["args"]
        op = args["hlo_op"]
        if op not in classes or classes[op] == "control":
            continue
        begin, duration = float(e["ts"]), float(e["dur"])
        ops[op] = ops.get(op, 0.0) + duration / steps
        span = spans.setdefault(str(args.get("run_id")), [begin, begin + duration])
        span[0], span[1] = min(span[0], begin), max(span[1], begin + duration)
    if not ops:
        return None
    # XLA's time: first kernel start to last kernel end, per run of the program
    execute = [end - begin for begin, end in spans.values()]
    by_kind = {"matmul": 0.0, "other": 0.0}
    for op, us in ops.items():
        by_kind[classes[op]] += us
    slowest = sorted(ops.items(), key=lambda kv: -kv[1])[:6]
    return {
        "steps": steps,
        "wall_us": wall * 1e6,
        "execute_us": float(np.median(execute)),
        "matmul_us": by_kind["matmul"],
        "other_us": by_kind["other"],
        "kernels": len(ops),
        "ops": {k: round(v, 2) for k, v in slowest},
    }


def profile_rows(
    ctx: BenchContext,
    configs: Sequence[tuple[Sequence[int], int]] | None = None,
) -> list[dict]:
    """Profiles of the manual and autodiff gradients: host time vs XLA execution,
    matmul kernels vs the rest, with the FLOP rate of the matmul kernels alone."""
    if configs is None:
        configs = GRADIENT_SIZES_QUICK[:1] if ctx.quick else GRADIENT_SIZES_FULL
    rows = []
    for sizes, batch in configs:
        model, params, x, y = mlp_problem(sizes, batch)
        fns = gradient_functions(model)
        _, gradient_flops = dense_sizes_flops(sizes, batch)
        for backprop in ("manual", "autodiff"):
            prof = op_profile(fns[backprop], (params, x, y))
            if prof is None:
                continue
            row = {
                "section": "profile",
                "name": f"{_size_name(sizes, batch)} {backprop}",
                **{k: v for k, v in prof.items() if k != "ops"},
                "host_us": prof["wall_us"] - prof["execute_us"],
                "matmul_gflops": gradient_flops / prof["matmul_us"] / 1e3,
                "slowest_ops": prof["ops"],
            }
            rows.append(row)
            ctx.say(
                f"profile {row['name']}: execute {row['execute_us']:.0f} us, "
                f"matmul {row['matmul_us']:.0f} us, other {row['other_us']:.0f} us"
            )
    return rows


def _dot_kernel(compiled) -> str:
    """Which library XLA:CPU runs a lone dot with: "ynnpack" (a custom fusion)
    or "eigen" (a plain ``dot`` instruction), from the optimized HLO."""
    text = compiled.as_text()
    entry = text[text.rfind("\nENTRY ") :]
    if "__ynn" in entry or "ynn_fusion" in entry:
        return "ynnpack"
    if " dot(" in entry:
        return "eigen"
    return "other"


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
    keys = iter(jax.random.split(jax.random.key(1), 3 * len(sizes)))

    def normal(*shape):
        return jax.random.normal(next(keys), shape, jnp.float32)

    products = {
        "x W": jax.jit(lambda a, b: a @ b),
        "xT dy": jax.jit(lambda a, b: a.T @ b),
        "dy WT": jax.jit(lambda a, b: a @ b.T),
    }
    dots = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w, xi, dy = normal(n_in, n_out), normal(batch, n_in), normal(batch, n_out)
        dots[f"layer {i + 1} forward x W"] = ("x W", xi, w)
        dots[f"layer {i + 1} dW = xT dy"] = ("xT dy", xi, dy)
        if i > 0:
            dots[f"layer {i + 1} dx = dy WT"] = ("dy WT", dy, w)
    calls, kernels, flops = {}, {}, {}
    for name, (kind, a, b) in dots.items():
        compiled = products[kind].lower(a, b).compile()
        calls[name] = functools.partial(compiled, a, b)
        kernels[name] = _dot_kernel(compiled)
        m, k = a.shape if kind != "xT dy" else a.shape[::-1]
        flops[name] = 2 * m * k * (b.shape[0] if kind == "dy WT" else b.shape[1])
    gradient = jax.jit(gradient_functions(model)["manual"])
    calls["gradient"] = functools.partial(gradient, params, x, y)
    matmul, a, b, matmul_flops = _matmul_problem(ctx.peak_n)
    calls["matmul"] = functools.partial(matmul, a, b)
    # a lone dot pays a dispatch the dots inside the gradient do not: take
    # off the time of a do-nothing call with two arguments (paired)
    floor = jax.jit(lambda a, b: a[0, 0], keep_unused=True)
    calls["floor"] = functools.partial(floor, *dots[next(iter(dots))][1:])
    times = interleaved_times(
        calls, reps=max(3, ctx.reps // 2), min_seconds=ctx.min_seconds
    )
    for name in dots:
        times[name] = np.maximum(times[name] - times["floor"], 1e-9)
    peak = matmul_flops / np.median(times["matmul"])
    label = _size_name(sizes, batch)
    rows = []
    for name in dots:
        seconds = float(np.median(times[name]))
        rows.append(
            {
                "section": "dots",
                "name": f"{label} {name}",
                "kernel": kernels[name],
                "gflop": flops[name] / 1e9,
                "ms": seconds * 1e3,
                "gflops": flops[name] / seconds / 1e9,
                "of_peak": flops[name] / seconds / peak,
            }
        )
    dot_seconds = sum(float(np.median(times[n])) for n in dots)
    total = sum(flops.values())
    _, gradient_flops = dense_sizes_flops(sizes, batch)
    gradient_seconds = float(np.median(times["gradient"]))
    rows.append(
        {
            "section": "dots",
            "name": f"{label} sum of the dots alone",
            "kernel": "",
            "gflop": total / 1e9,
            "ms": dot_seconds * 1e3,
            "gflops": total / dot_seconds / 1e9,
            "of_peak": total / dot_seconds / peak,
        }
    )
    rows.append(
        {
            "section": "dots",
            "name": f"{label} whole gradient (manual)",
            "kernel": "",
            "gflop": gradient_flops / 1e9,
            "ms": gradient_seconds * 1e3,
            "gflops": gradient_flops / gradient_seconds / 1e9,
            "of_peak": gradient_flops / gradient_seconds / peak,
        }
    )
    ctx.say(
        f"dots {label}: alone {dot_seconds * 1e3:.2f} ms, "
        f"gradient {gradient_seconds * 1e3:.2f} ms"
    )
    return rows


CHECKPOINT_DEPTHS_FULL = (8, 16, 32, 64)
CHECKPOINT_DEPTHS_QUICK = (4, 8)


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
    call in a fresh process (``checkpoint_rss``)."""
    if measure_rss is None:
        measure_rss = not ctx.quick
    if depths is None:
        depths = CHECKPOINT_DEPTHS_QUICK if ctx.quick else CHECKPOINT_DEPTHS_FULL
    width = width or (64 if ctx.quick else 512)
    batch = batch or (32 if ctx.quick else 256)
    reps = max(3, ctx.reps // 3)
    rows = []
    for depth in depths:
        sizes = [width] * (depth + 1) + [10]
        plain, params, x, y = mlp_problem(sizes, batch)
        ckpt = checkpointed_mlp(sizes, "relu", segment_size, dtype=jnp.float32)
        ckpt_params = group_params(params, ckpt)
        variants = {
            "plain": (plain, params),
            "ckpt": (ckpt, ckpt_params),
        }
        compiled, calls = {}, {}
        for name, (model, p) in variants.items():
            for backprop in ("manual", "autodiff"):
                fn = jax.jit(_loss_and_grad_fn(model, backprop))
                key = f"{name}_{backprop}"
                compiled[key] = fn.lower(p, x, y).compile()
                calls[key] = functools.partial(fn, p, x, y)
        times = interleaved_times(calls, reps=reps, min_seconds=ctx.min_seconds)
        _, gradient_flops = dense_sizes_flops(sizes, batch)
        row: dict[str, Any] = {
            "section": "checkpoint",
            "name": f"depth {depth} width {width} B{batch}",
            "depth": depth,
            "width": width,
            "batch": batch,
            "segments": [len(p) for p in ckpt_params],
            "gradient_gflop": gradient_flops / 1e9,
        }
        for key, c in compiled.items():
            row.update(time_columns(f"{key}_ms", times[key]))
            row.update(memory_columns(c, key))
            row[f"{key}_xla_gflop"] = (xla_flops(c) or float("nan")) / 1e9
        for backprop in ("manual", "autodiff"):
            row.update(
                ratio_columns(
                    f"{backprop}_time_ckpt/plain",
                    times[f"ckpt_{backprop}"],
                    times[f"plain_{backprop}"],
                )
            )
            plain_temp = row.get(f"plain_{backprop}_temp_mib")
            ckpt_temp = row.get(f"ckpt_{backprop}_temp_mib")
            if plain_temp:
                row[f"{backprop}_temp_ckpt/plain"] = ckpt_temp / plain_temp
        if measure_rss:
            row.update(checkpoint_rss(depth, width, batch, segment_size))
        rows.append(row)
        ctx.say(
            f"checkpoint depth {depth}: temp {row.get('plain_manual_temp_mib', 0):.1f}"
            f" -> {row.get('ckpt_manual_temp_mib', 0):.1f} MiB, time x"
            f"{row['manual_time_ckpt/plain']:.2f}"
        )
    return rows


# ------------------------------------------------------------------ training

#: The digits MLP of the training sections (the gradient section's first row).
EPOCH_MLP = (64, 128, 128, 10)
#: (dataset, MLP sizes, batch) of the vmap section: small models.
VMAP_PROBLEMS_FULL = (("blobs", (2, 16, 3), 16), ("digits", (64, 32, 10), 32))
VMAP_PROBLEMS_QUICK = (("blobs", (2, 16, 3), 16),)


def _digits_train_state(model, x, y, optimizer):
    """Initial TrainState and the prepared (x, targets) of a classifier."""
    from jaxbp.backprop import prepare
    from jaxbp.train import TrainState

    params, state = model.init_with_state(jax.random.key(0))
    x, t, _, state = prepare(model, params, x, y, "cross_entropy", state)
    return TrainState(params, state, optimizer.init(params)), x, t


def _epoch_batches(train_key, n: int, batch: int):
    """The mini-batch indices and step keys :func:`jaxbp.train.make_epoch`
    draws for epoch 1 of ``train_key`` (so a Python loop can replay them)."""
    epoch_key = jax.random.fold_in(train_key, jnp.uint32(1))
    perm_key, steps_key = jax.random.split(epoch_key)
    num_steps = n // batch
    order = jax.random.permutation(perm_key, jnp.arange(n, dtype=jnp.int32))
    index = np.asarray(order[: num_steps * batch]).reshape(num_steps, batch)
    return index, list(jax.random.split(steps_key, num_steps))


def _max_difference(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(u - v)))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def _top_ops(ops: Mapping[str, float], total: float, k: int = 6) -> dict[str, float]:
    """The ``k`` largest entries of ``ops`` as fractions of ``total``."""
    return {op: round(us / total, 3) for op, us in list(ops.items())[:k]}


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
    from jaxbp import data, optim
    from jaxbp.train import make_epoch, make_step, train_keys

    dataset = data.load("digits")
    model = jaxbp.mlp(list(sizes))
    optimizer = optim.adam(1e-3)
    train_state, x, t = _digits_train_state(model, *dataset.train, optimizer)
    n = x.shape[0]
    step = make_step(model, "cross_entropy", optimizer)
    _, train_key = train_keys(jax.random.key(0))

    scan_epoch = jax.jit(make_epoch(step, n, batch))
    scan_args = (train_state, x, t, train_key, 1)
    compiled_epoch = scan_epoch.lower(*scan_args).compile()
    index, keys = _epoch_batches(train_key, n, batch)
    num_steps = len(keys)
    batches = [(x[i], t[i]) for i in index]
    x_host, t_host = np.asarray(x), np.asarray(t)
    jit_step = jax.jit(step)
    floor = jax.jit(lambda s, xb, tb, k: xb[0, 0], keep_unused=True)

    def loop():
        state = train_state
        for (xb, tb), key in zip(batches, keys):
            state, _ = jit_step(state, xb, tb, key)
        return state

    def loop_numpy():
        state = train_state
        for i, key in zip(index, keys):
            state, _ = jit_step(state, x_host[i], t_host[i], key)
        return state

    def floor_loop():
        return [floor(train_state, xb, tb, key) for (xb, tb), key in zip(batches, keys)]

    scanned, _ = scan_epoch(*scan_args)
    agree = _max_difference(scanned.params, loop().params)
    matmul, a, b, matmul_flops = _matmul_problem(ctx.peak_n)
    times = interleaved_times(
        {
            "scan": functools.partial(scan_epoch, *scan_args),
            "loop": loop,
            "loop_numpy": loop_numpy,
            "floor": floor_loop,
            "matmul": functools.partial(matmul, a, b),
        },
        reps=ctx.reps,
        min_seconds=ctx.min_seconds,
    )
    _, step_flops = dense_sizes_flops(sizes, batch)
    peak = matmul_flops / float(np.median(times["matmul"]))
    per_step = {k: float(np.median(times[k])) / num_steps * 1e6 for k in times}
    dispatch_us = per_step["loop"] - per_step["scan"]
    at_peak_us = step_flops / peak * 1e6
    row: dict[str, Any] = {
        "section": "epoch",
        "name": f"{_size_name(sizes, batch)} digits Adam",
        "steps": num_steps,
        "batch": batch,
    }
    for k in ("scan", "loop", "loop_numpy", "floor"):
        row.update(time_columns(f"{k}_ms", times[k]))
        row[f"{k}_step_us"] = per_step[k]
    row.update(ratio_columns("loop/scan", times["loop"], times["scan"]))
    row.update(ratio_columns("loop_numpy/scan", times["loop_numpy"], times["scan"]))
    row.update(
        {
            "dispatch_step_us": dispatch_us,
            "step_gflop": step_flops / 1e9,
            "scan_gflops": step_flops / per_step["scan"] / 1e3,
            "peak_gflops": peak / 1e9,
            "scan_of_peak": step_flops / per_step["scan"] * 1e6 / peak,
            "at_peak_step_us": at_peak_us,
            "bound": 1 + dispatch_us / at_peak_us,
            "scan_compile_s": compile_seconds(
                make_epoch(step, n, batch), scan_args, reps=ctx.compile_reps
            )["compile_s"],
            # the train step alone (forward, backward, Adam update), as
            # `fit` and the loop compile it, and XLA's memory analysis of it
            "step_compile_s": compile_seconds(
                step, (train_state, *batches[0], keys[0]), reps=ctx.compile_reps
            )["compile_s"],
            **memory_columns(
                jit_step.lower(train_state, *batches[0], keys[0]).compile(), "step"
            ),
            "max_param_diff": agree,
        }
    )
    profile = kernel_profile(
        functools.partial(compiled_epoch, *scan_args), compiled_epoch, runs=5
    )
    if profile is not None:
        kernel_us = profile["kernel_us"] / num_steps
        row.update(
            {
                "profiled_step_us": profile["wall_us"] / num_steps,
                "kernel_share": profile["kernel_us"] / profile["wall_us"],
                "kernel_step_us": kernel_us,
                "matmul_kernel_step_us": profile["matmul_us"] / num_steps,
                "launches_per_step": profile["kernel_launches"] / num_steps,
                "top_ops": _top_ops(profile["ops"], profile["kernel_us"]),
            }
        )
    ctx.say(
        f"epoch {row['name']}: scan {row['scan_ms']:.2f} ms, loop "
        f"{row['loop_ms']:.2f} ms, loop/scan {row['loop/scan']:.2f} "
        f"(bound {row['bound']:.2f})"
    )
    return [row]


def vmap_rows(
    ctx: BenchContext,
    problems: Sequence[tuple[str, Sequence[int], int]] | None = None,
    num_models: int | None = None,
    epochs: int | None = None,
) -> list[dict]:
    """N small models trained at once: one ``jax.vmap``-ed program vs the same
    jitted training run N times, one after another.

    A training run is :func:`jaxbp.train.make_train_fn` (init from a key,
    ``epochs`` epochs of Adam, each a shuffle and a ``lax.scan`` of steps),
    the same compiled program for the N seeds of ``sequential`` and under
    ``jax.vmap`` over the keys for ``vmap``. ``bound`` is the largest
    sequential/vmap ratio possible here: the sequential time over the time the
    N runs' FLOPs would take at the measured matmul peak. The profile of the
    vmapped run splits its kernel time into matmuls, the per-epoch shuffles
    (``sort``) and the rest.
    """
    from jaxbp import data, optim
    from jaxbp.train import make_train_fn

    if problems is None:
        problems = VMAP_PROBLEMS_QUICK if ctx.quick else VMAP_PROBLEMS_FULL
    num_models = num_models or (8 if ctx.quick else 64)
    epochs = epochs or (2 if ctx.quick else 5)
    rows = []
    for dataset_name, sizes, batch in problems:
        train_x, train_y = data.load(dataset_name).train
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
        single, vmapped = jax.jit(train), jax.jit(jax.vmap(train, in_axes=(0, None)))
        compiled_vmapped = vmapped.lower(keys, lr).compile()
        key_list = list(keys)

        def sequential(single=single, key_list=key_list, lr=lr):
            return [single(k, lr) for k in key_list]

        runs = compiled_vmapped(keys, lr)
        agree = _max_difference(
            runs.params,
            jax.tree.map(lambda *a: jnp.stack(a), *[r.params for r in sequential()]),
        )
        matmul, a, b, matmul_flops = _matmul_problem(ctx.peak_n)
        times = interleaved_times(
            {
                "vmap": functools.partial(compiled_vmapped, keys, lr),
                "sequential": sequential,
                "matmul": functools.partial(matmul, a, b),
            },
            reps=max(3, ctx.reps // 3),
            min_seconds=ctx.min_seconds,
            warmup=1,
        )
        steps = train_x.shape[0] // batch
        flops = num_models * epochs * steps * dense_sizes_flops(sizes, batch)[1]
        peak = matmul_flops / float(np.median(times["matmul"]))
        at_peak_s = flops / peak
        row: dict[str, Any] = {
            "section": "vmap",
            "name": f"{num_models} x {_size_name(sizes, batch)} {dataset_name}",
            "models": num_models,
            "epochs": epochs,
            "steps_per_epoch": steps,
        }
        for k in ("vmap", "sequential"):
            row.update(time_columns(f"{k}_ms", times[k]))
            row[f"{k}_gflops"] = flops / float(np.median(times[k])) / 1e9
        row.update(ratio_columns("sequential/vmap", times["sequential"], times["vmap"]))
        row.update(
            {
                "gflop": flops / 1e9,
                "peak_gflops": peak / 1e9,
                "vmap_of_peak": flops / float(np.median(times["vmap"])) / peak,
                "bound": float(np.median(times["sequential"])) / at_peak_s,
                "single_compile_s": compile_seconds(
                    train, (keys[0], lr), reps=ctx.compile_reps
                )["compile_s"],
                "vmap_compile_s": compile_seconds(
                    jax.vmap(train, in_axes=(0, None)),
                    (keys, lr),
                    reps=ctx.compile_reps,
                )["compile_s"],
                "max_param_diff": agree,
            }
        )
        profile = kernel_profile(
            functools.partial(compiled_vmapped, keys, lr), compiled_vmapped, runs=3
        )
        compiled_single = single.lower(keys[0], lr).compile()
        single_profile = kernel_profile(
            functools.partial(compiled_single, keys[0], lr), compiled_single, runs=10
        )
        if profile is not None and single_profile is not None:
            total = profile["kernel_us"]
            sort_us = sum(us for op, us in profile["ops"].items() if "sort" in op)
            row.update(
                {
                    # kernel time of one model's run: alone vs its share of
                    # the vmapped program (both under the profiler, which
                    # slows small kernels: compare them, not wall times)
                    "single_kernel_ms": single_profile["kernel_us"] / 1e3,
                    "vmap_kernel_per_model_ms": total / num_models / 1e3,
                    # of a single run's time, the part in kernels (the rest,
                    # launching and dispatch, is what vmap removes)
                    "single_kernel_share": single_profile["kernel_us"]
                    / single_profile["wall_us"],
                    "matmul_share": profile["matmul_us"] / total,
                    "sort_share": sort_us / total,
                    "other_share": (profile["other_us"] - sort_us) / total,
                    "top_ops": _top_ops(profile["ops"], total),
                }
            )
        rows.append(row)
        ctx.say(
            f"vmap {row['name']}: vmap {row['vmap_ms']:.1f} ms, sequential "
            f"{row['sequential_ms']:.1f} ms, ratio {row['sequential/vmap']:.2f} "
            f"(bound {row['bound']:.1f})"
        )
    return rows


def _loss_and_grad_fn(model, backprop):
    def fn(p, x, y):
        return jaxbp.loss_and_grad(model, p, x, y, backprop=backprop)

    return fn


#: The sections, in order; each maps a BenchContext to a list of row dicts with
#: at least "section" and "name". Append to add rows (e.g. training loops).
BENCHMARKS: list[Callable[[BenchContext], list[dict]]] = [
    matmul_rows,
    gradient_rows,
    profile_rows,
    dot_rows,
    checkpoint_rows,
    epoch_rows,
    vmap_rows,
]


# ------------------------------------------------------------------ report


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured."""
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    with contextlib.suppress(AttributeError, OSError):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    with contextlib.suppress(ImportError):
        import jaxlib

        info["jaxlib"] = jaxlib.__version__
    with contextlib.suppress(OSError):
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
        mhz = re.search(r"^cpu MHz\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
        flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.MULTILINE)
        info["cpu"] = model.group(1) if model else None
        info["cpu_mhz"] = float(mhz.group(1)) if mhz else None
        if flags:
            simd = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")
            info["simd"] = [f for f in simd if f in flags.group(1).split()]
    with contextlib.suppress(OSError, AttributeError):
        info["loadavg"] = list(os.getloadavg())
    return info


def run(
    ctx: BenchContext | None = None,
    benchmarks: Sequence[Callable[[BenchContext], list[dict]]] | None = None,
) -> dict[str, Any]:
    """Run the benchmark sections; returns ``{"machine", "settings", "rows"}``."""
    ctx = ctx or BenchContext.make()
    machine = machine_info()
    start = time.perf_counter()
    rows: list[dict] = []
    for bench in BENCHMARKS if benchmarks is None else benchmarks:
        rows.extend(bench(ctx))
    with contextlib.suppress(OSError, AttributeError):
        machine["loadavg_after"] = list(os.getloadavg())
    settings = {
        "quick": ctx.quick,
        "reps": ctx.reps,
        "min_seconds": ctx.min_seconds,
        "seconds": time.perf_counter() - start,
        "peak_gflops": ctx.shared.get("peak_gflops"),
    }
    return {"machine": machine, "settings": settings, "rows": rows}


#: Columns of the printed table per section: (key, header, format).
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "matmul": [
        ("name", "matmul", "{}"),
        ("ms", "ms", "{:.2f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("of_peak", "of peak", "{:.0%}"),
    ],
    "gradient": [
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
    ],
    "profile": [
        ("name", "gradient", "{}"),
        ("wall_us", "wall us", "{:.0f}"),
        ("host_us", "host us", "{:.0f}"),
        ("execute_us", "XLA us", "{:.0f}"),
        ("matmul_us", "matmul us", "{:.0f}"),
        ("other_us", "other us", "{:.0f}"),
        ("kernels", "kernels", "{}"),
        ("matmul_gflops", "matmul GFLOP/s", "{:.1f}"),
    ],
    "dots": [
        ("name", "matrix product", "{}"),
        ("kernel", "kernel", "{}"),
        ("gflop", "GFLOP", "{:.4f}"),
        ("ms", "ms", "{:.3f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("of_peak", "of peak", "{:.0%}"),
    ],
    "epoch": [
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
    ],
    "vmap": [
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
    ],
    "checkpoint": [
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
    ],
}


def _cell(row: dict, key: str, fmt: str) -> str:
    if key.endswith("_iqr"):
        base = key[: -len("_iqr")]
        if f"{base}_q1" in row:
            return f"{row[f'{base}_q1']:.3f}-{row[f'{base}_q3']:.3f}"
        return ""
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, list):
        value = "+".join(map(str, value)) if fmt == "{}" else value
    try:
        return fmt.format(value)
    except (TypeError, ValueError):
        return str(value)


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table per section (unknown sections: every scalar column)."""
    out = []
    sections = list(dict.fromkeys(r["section"] for r in rows))
    for section in sections:
        part = [r for r in rows if r["section"] == section]
        columns = COLUMNS.get(section)
        if columns is None:
            keys = [k for k in part[0] if k != "section"]
            columns = [
                (k, k, "{:.4g}" if isinstance(part[0][k], float) else "{}")
                for k in keys
            ]
        header = [h for _, h, _ in columns]
        body = [[_cell(r, k, f) for k, _, f in columns] for r in part]
        widths = [max(len(x) for x in col) for col in zip(header, *body)]
        out.append(f"[{section}]")
        out.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
        for line in body:
            out.append("  ".join(c.rjust(w) for c, w in zip(line, widths)))
        out.append("")
    return "\n".join(out)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(result: dict, out_dir: str | Path, name: str = "benchmark") -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(_jsonable(result), indent=2))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """``benchmark [--quick] [--out DIR]``: run, print the table, write DIR/benchmark.json."""
    parser = argparse.ArgumentParser(
        prog="benchmark",
        description="Manual vs autodiff gradients, the matmul peak, memory, "
        "gradient checkpointing, scan epochs, vmapped training.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few reps")
    parser.add_argument("--out", default="runs/bench", help="output directory")
    args = parser.parse_args(argv)
    ctx = BenchContext.make(quick=args.quick, log=lambda m: print(m, file=sys.stderr))
    result = run(ctx)
    m = result["machine"]
    print(
        f"{m.get('cpu')} ({m.get('nproc')} CPUs), {m['backend']}, jax {m['jax']}, "
        f"matmul peak {result['settings']['peak_gflops']:.1f} GFLOP/s, "
        f"{result['settings']['seconds']:.0f} s"
    )
    print(format_table(result["rows"]))
    path = write_json(result, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
