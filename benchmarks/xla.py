"""All XLA introspection of the benchmarks: the optimized HLO text, XLA's cost
and memory analyses, JAX profiler traces, and the resident-set-size probe.

Each of these depends on the backend, the jax version or the operating system
(a backend may not implement memory analysis; the profiler may not write a
trace; ``/proc`` is Linux's). A function here that cannot answer raises
:class:`Unavailable` with the reason; the sections turn it into a field
``"unavailable: <reason>"`` and a printed warning line (:func:`attempt`,
:func:`attempt_columns`), so a missing number is always visible and a bug
(any other exception) still shows its traceback.
"""

from __future__ import annotations

import gc
import glob
import gzip
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from benchmarks.timing import blocking

MiB = 2**20
#: The optimized HLO's bookkeeping instructions (no kernel of their own).
_NOT_KERNELS = ("parameter(", "constant(", "tuple(", "get-tuple-element(", "bitcast(")


class Unavailable(Exception):
    """An introspection this backend, jax version or system does not provide;
    the message says why."""


def unavailable(what: str, reason: object) -> str:
    """Print ``warning: <what> unavailable: <reason>`` on stderr and return the
    field value ``"unavailable: <reason>"``."""
    print(f"warning: {what} unavailable: {reason}", file=sys.stderr)
    return f"unavailable: {reason}"


def attempt(what: str, fn: Callable[..., Any], *args) -> Any:
    """``fn(*args)``, or ``"unavailable: <reason>"`` (warned) if it raises
    :class:`Unavailable`."""
    try:
        return fn(*args)
    except Unavailable as error:
        return unavailable(what, error)


def attempt_columns(key: str, fn: Callable[..., dict], *args) -> dict:
    """The columns ``fn(*args)`` returns, or ``{key: "unavailable: <reason>"}``
    (warned) if it raises :class:`Unavailable`."""
    try:
        return fn(*args)
    except Unavailable as error:
        return {key: unavailable(key, error)}


# ------------------------------------------------------------------ analyses


def memory_columns(compiled, prefix: str) -> dict[str, float]:
    """XLA's memory analysis of a compiled function, in MiB.

    ``temp`` is the block XLA allocates for intermediates; ``peak`` is what
    the program holds at once while it runs: its arguments, its outputs less
    those that reuse (alias) a donated argument's buffer, and ``temp``. Temp
    alone can mislead: without donation XLA may place intermediates in the
    output buffers before the outputs are written, and report almost no temp.
    """
    try:
        stats = compiled.memory_analysis()
    except NotImplementedError as error:
        raise Unavailable(f"memory analysis: {error}") from error
    if stats is None:
        raise Unavailable("memory analysis: the backend returned nothing")
    out = {}
    for field in ("temp", "argument", "output", "alias"):
        value = getattr(stats, f"{field}_size_in_bytes", None)
        if value is None:
            raise Unavailable(f"memory analysis has no {field}_size_in_bytes")
        out[f"{prefix}_{field}_mib"] = value / MiB
    out[f"{prefix}_peak_mib"] = (
        out[f"{prefix}_argument_mib"]
        + out[f"{prefix}_output_mib"]
        - out[f"{prefix}_alias_mib"]
        + out[f"{prefix}_temp_mib"]
    )
    return out


def xla_gflop(compiled) -> float:
    """GFLOPs by XLA's cost analysis (counts elementwise work too)."""
    try:
        cost = compiled.cost_analysis()
    except NotImplementedError as error:
        raise Unavailable(f"cost analysis: {error}") from error
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    if not cost or "flops" not in cost:
        raise Unavailable("cost analysis reports no flops")
    return float(cost["flops"]) / 1e9


def hlo_text(compiled) -> str:
    """The optimized HLO module of a compiled function, as text."""
    try:
        text = compiled.as_text()
    except NotImplementedError as error:
        raise Unavailable(f"HLO text: {error}") from error
    if not text or "\nENTRY " not in text:
        raise Unavailable("HLO text has no ENTRY computation")
    return text


def _entry(text: str) -> str:
    return text[text.rfind("\nENTRY ") :]


def hlo_op_count(compiled) -> int:
    """Instructions in the entry computation of the optimized HLO (kernels run
    one after the other: each costs a launch, which dominates tiny models)."""
    entry = _entry(hlo_text(compiled))
    body = entry[entry.find("{") + 1 : entry.find("\n}")]
    lines = [ln for ln in body.splitlines() if " = " in ln]
    return sum(1 for ln in lines if not any(s in ln for s in _NOT_KERNELS))


def hlo_op_classes(compiled) -> dict[str, str]:
    """Instruction name -> "matmul" (a dot, or a fusion that calls a computation
    with a dot), "control" (a while loop, call or conditional: its time is that
    of the kernels inside it) or "other", for every instruction of the
    optimized HLO (names are unique in a module; a loop body's kernels show up
    in a trace under their own names)."""
    text = hlo_text(compiled)
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


def dot_kernel(compiled) -> str:
    """Which library XLA:CPU runs a lone dot with: "ynnpack" (a custom fusion)
    or "eigen" (a plain ``dot`` instruction), from the optimized HLO."""
    entry = _entry(hlo_text(compiled))
    if "__ynn" in entry or "ynn_fusion" in entry:
        return "ynnpack"
    if " dot(" in entry:
        return "eigen"
    return "other"


# ------------------------------------------------------------------ profiler


def _stop_trace() -> Exception | None:
    try:
        jax.profiler.stop_trace()
    except (RuntimeError, ValueError) as error:
        return error
    return None


def _read_perfetto(directory: str) -> list[dict]:
    paths = glob.glob(f"{directory}/**/perfetto_trace.json.gz", recursive=True)
    if len(paths) != 1:
        raise Unavailable(f"the profiler wrote {len(paths)} perfetto traces, not 1")
    try:
        with gzip.open(paths[0]) as f:
            return json.load(f)["traceEvents"]
    except (OSError, ValueError, KeyError) as error:
        raise Unavailable(f"unreadable perfetto trace: {error!r}") from error


def profiler_events(call: Callable[[], Any], runs: int) -> tuple[list[dict], float]:
    """``(kernel events, wall seconds per call)`` of ``runs`` calls of ``call``
    (blocking) under the JAX profiler. A kernel event is a perfetto ``X``
    event with an ``hlo_op`` argument: one XLA kernel (thunk) running."""
    call = blocking(call)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            jax.profiler.start_trace(tmp, create_perfetto_trace=True)
        except (RuntimeError, ValueError) as error:
            raise Unavailable(f"the profiler did not start: {error!r}") from error
        try:
            start = time.perf_counter()
            for _ in range(runs):
                call()
            wall = (time.perf_counter() - start) / runs
        finally:
            stop_error = _stop_trace()
        if stop_error is not None:
            raise Unavailable(f"the profiler did not stop: {stop_error!r}")
        events = _read_perfetto(tmp)
    kernels = [
        e for e in events if e.get("ph") == "X" and "hlo_op" in (e.get("args") or {})
    ]
    if not kernels:
        raise Unavailable("the profiler trace holds no XLA kernel events")
    return kernels, wall


def kernel_profile(call: Callable[[], Any], compiled, runs: int) -> dict:
    """Where the time of ``runs`` calls of ``call`` (running ``compiled``) goes,
    from a profiler trace, per call: ``wall_us`` (timed around the calls,
    profiler on), ``execute_us`` (XLA running the program: first kernel start
    to last kernel end, median over runs), ``kernel_us`` (summed kernel
    durations; loops count through the kernels in their bodies),
    ``matmul_us`` / ``other_us`` by kind, ``kernel_launches``, ``kernels``
    (distinct HLO ops run) and ``ops``: each op's microseconds, slowest
    first. ``wall_us - execute_us`` is the host side: dispatch, argument
    handling, launching, waiting."""
    classes = hlo_op_classes(compiled)
    events, wall = profiler_events(call, runs)
    ops: dict[str, float] = {}
    spans: dict[str, list[float]] = {}  # run id -> [first start, last end]
    launches = 0
    for e in events:
        op = e["args"]["hlo_op"]
        if classes.get(op, "other") == "control":
            continue
        begin, duration = float(e["ts"]), float(e["dur"])
        ops[op] = ops.get(op, 0.0) + duration / runs
        launches += 1
        span = spans.setdefault(str(e["args"].get("run_id")), [begin, begin])
        span[0], span[1] = min(span[0], begin), max(span[1], begin + duration)
    by_kind = {"matmul": 0.0, "other": 0.0}
    for op, us in ops.items():
        by_kind[classes.get(op, "other")] += us
    return {
        "wall_us": wall * 1e6,
        "execute_us": float(np.median([end - begin for begin, end in spans.values()])),
        "kernel_us": sum(ops.values()),
        "matmul_us": by_kind["matmul"],
        "other_us": by_kind["other"],
        "kernel_launches": launches / runs,
        "kernels": len(ops),
        "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
    }


# ------------------------------------------------------------------ memory


def _status_kib(field: str) -> int:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError as error:
        raise Unavailable(f"cannot read /proc/self/status: {error}") from error
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    if match is None:
        raise Unavailable(f"/proc/self/status has no {field}")
    return int(match.group(1))


def peak_rss_delta_mib(fn: Callable[[], Any], reps: int = 3) -> float:
    """Measured rise of the resident set size while ``fn()`` runs, in MiB (the
    smallest of ``reps`` calls), by resetting the kernel's high-water mark
    (``/proc/self/clear_refs``; Linux only).

    It counts outputs as well as temporaries, and only pages the allocator
    has to fetch from the kernel: meaningful only when freed buffers go back
    to the kernel, i.e. with glibc's mmap threshold fixed
    (``MALLOC_MMAP_THRESHOLD_``, as the checkpoint section's fresh process
    sets); otherwise malloc keeps freed memory and the rise after a warm-up
    call is about 0.
    """
    fn = blocking(fn)
    fn()
    deltas = []
    for _ in range(reps):
        gc.collect()
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError as error:
            raise Unavailable(
                f"cannot reset the RSS high-water mark: {error}"
            ) from error
        before = _status_kib("VmRSS")
        result = fn()
        peak = _status_kib("VmHWM")
        del result
        deltas.append((peak - before) / 1024)
    return float(min(deltas))
