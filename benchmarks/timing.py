"""The one interleaved timer: medians of paired repetitions, and ratio columns.

Every number is measured in one process, after a warm-up call (compilation),
timing only after ``block_until_ready()``. The contenders of one comparison
are timed *interleaved*: each repetition times every contender once, in an
order shuffled anew for each repetition, so slow drifts of the machine (other
processes, frequency) fall on all of them alike. A repetition times
``number`` back-to-back calls (enough to last ``min_seconds``), each blocked
on, and divides. We report the median over repetitions and the interquartile
range (q1, q3); a ratio is the median of the per-repetition ratios (paired,
same repetition) with its quartiles.
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np


def blocking(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` that waits for its result (``jax.block_until_ready``)."""
    return lambda: jax.block_until_ready(fn())


def calibrate(fn: Callable[[], Any], min_seconds: float) -> int:
    """How many back-to-back calls of ``fn`` (already warm) last ``min_seconds``."""
    fn = blocking(fn)
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
def gc_paused():
    """Python's garbage collector off (after a collection) inside the block."""
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
    blocked = {k: blocking(f) for k, f in fns.items()}
    for f in blocked.values():
        for _ in range(warmup):
            f()
    numbers = {k: calibrate(fns[k], min_seconds) for k in names}
    samples: dict[str, list[float]] = {k: [] for k in names}
    rng = np.random.default_rng(seed)
    with gc_paused():
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


def median(values) -> float:
    """The median of ``values`` as a Python float."""
    return quartiles(values)[1]


def time_columns(prefix: str, seconds, scale: float = 1e3) -> dict[str, float]:
    """``{prefix: median, prefix_q1: q1, prefix_q3: q3}`` in ms (``scale``)."""
    q1, med, q3 = quartiles(np.asarray(seconds) * scale)
    return {prefix: med, f"{prefix}_q1": q1, f"{prefix}_q3": q3}


def ratio_columns(prefix: str, numerator, denominator) -> dict[str, float]:
    """The median and quartiles of the paired per-repetition ratios."""
    q1, med, q3 = quartiles(np.asarray(numerator) / np.asarray(denominator))
    return {prefix: med, f"{prefix}_q1": q1, f"{prefix}_q3": q3}


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
