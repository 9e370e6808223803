"""How jaxbp compiles: XLA's fast-compile options, the persistent compilation
cache, and a log of what a piece of code compiled.

This module uses jax only inside its functions, and importing jaxbp imports
jax but starts no backend (jax starts it at the first array), so a process
can import :func:`fast_compile_xla_flags` and still put its result in
``XLA_FLAGS`` in time (the test suite's ``conftest.py``, an experiment script).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import threading
from pathlib import Path

from jaxbp import executable_cache
from jaxbp.executable_cache import KEY_EVENT, LOAD_EVENT

#: XLA:CPU options for programs that run briefly on small arrays, where
#: compiling is most of the cost: no LLVM optimization, and the classic loop
#: emitters instead of the fusion emitters. Faster compiles of the same
#: operations, but not always bit for bit the same results: elementwise
#: functions compiled without optimization can differ in the last bit (e.g.
#: some entries of ``jax.random.normal``, by 1-2 ulp). (A process whose every
#: compilation should use them puts them in ``XLA_FLAGS`` before jax starts
#: its backend: :func:`fast_compile_xla_flags`.)
FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}


def fast_compile_xla_flags(existing: str = "") -> str:
    """``XLA_FLAGS`` with :data:`FAST_COMPILE` appended to ``existing``: for a
    process whose every compilation should use them (set before jax starts)."""
    flags = [f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE.items()]
    return " ".join([existing, *flags]).strip()


def compile_fast(fn, *args, fast: bool = True):
    """``jax.jit(fn)`` lowered for ``args`` and compiled, with :data:`FAST_COMPILE`
    when ``fast`` (falling back to the defaults on an XLA without one of them)."""
    import jax

    lowered = jax.jit(fn).lower(*args)
    return executable_cache.compile_lowered(lowered, FAST_COMPILE if fast else {})


def jit_fast(fn):
    """``jax.jit(fn)`` compiled with :data:`FAST_COMPILE`, for programs whose
    results do not depend on XLA's optimisations: integer work (random bits,
    key splitting, permutations) is exact at any optimisation level. Falls
    back to the default options on an XLA without one of them. Traced inside
    another program (``jit``, ``eval_shape``), it is a plain inner ``jit``:
    the outer program's options apply. Kept on disk while the executable
    cache is on (``jaxbp.executable_cache``)."""
    return executable_cache.jit(fn, FAST_COMPILE)


def programs_per_process(maxsize: int):
    """``functools.lru_cache(maxsize)`` for a function that makes a program
    from settings (a model, an optimizer, sizes): a later call with the same
    settings gets the program already made, traced and compiled. Settings that
    cannot be hashed (an optimizer object holding a list, say) make a program
    for that call alone. ``cache_clear`` empties the cache."""

    def decorate(make):
        cached = functools.lru_cache(maxsize=maxsize)(make)

        @functools.wraps(make)
        def program(*settings):
            try:
                hash(settings)
            except TypeError:
                return make(*settings)
            return cached(*settings)

        program.cache_clear = cached.cache_clear
        return program

    return decorate


def host_array(x):
    """``x`` as a NumPy array when it is host data (a NumPy array, a list, a
    number), else None (a JAX array or a tracer)."""
    import jax
    import numpy as np

    if isinstance(x, (jax.Array, jax.core.Tracer)):
        return None
    return np.asarray(x)


def to_device(host):
    """A NumPy array put on the default device by a transfer, its dtype made
    JAX's (64-bit types become 32-bit with x64 off), as ``jnp.asarray`` does,
    but without the small program ``jnp.asarray`` compiles for every new
    shape and dtype (a run that prepares data compiles nothing)."""
    import jax

    return jax.device_put(host)


#: The ``jax.monitoring`` events of making a program: tracing to a jaxpr,
#: lowering it to MLIR, and XLA's compilation (or a persistent-cache load);
#: and jaxbp's executable cache's keying and loading
#: (``executable_cache.KEY_EVENT``, ``executable_cache.LOAD_EVENT``).
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
LOWER_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
MAKING_EVENTS = (TRACE_EVENT, KEY_EVENT, LOWER_EVENT, COMPILE_EVENT, LOAD_EVENT)


@dataclasses.dataclass
class CompileLog:
    """What a block of code compiled (:func:`compile_log`): ``programs`` XLA
    programs compiled or loaded from a cache (JAX's or jaxbp's; ``loaded`` of
    them from jaxbp's executable cache), and ``seconds`` of wall time spent
    tracing, lowering, keying, compiling or loading (overlapping spans, such
    as a jitted function traced inside another, counted once)."""

    programs: int = 0
    loaded: int = 0
    spans: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def seconds(self) -> float:
        return covered_seconds(self.spans)


def covered_seconds(spans) -> float:
    """Seconds the ``(start, end)`` spans cover, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


@contextlib.contextmanager
def compile_log():
    """Within the ``with``, log what this thread compiles: yields a
    :class:`CompileLog` (read it after the block)."""
    from jax import monitoring

    log, thread = CompileLog(), threading.get_ident()

    def on_span(event, start, end, **_):
        if threading.get_ident() != thread:
            return
        if event in MAKING_EVENTS:
            log.spans.append((start, end))
        if event in (COMPILE_EVENT, LOAD_EVENT):
            log.programs += 1
        if event == LOAD_EVENT:
            log.loaded += 1

    monitoring.register_event_time_span_listener(on_span)
    try:
        yield log
    finally:
        monitoring.unregister_event_time_span_listener(on_span)


def enable_compilation_cache() -> None:
    """Keep compiled programs on disk between runs: JAX's persistent cache,
    and in its ``jaxbp-executables`` subdirectory jaxbp's own
    (``jaxbp.executable_cache``: the programs of ``jit_fast``, ``fit`` and
    ``fit_language_model``, found without lowering them again).

    A second ``jaxbp train`` with the same model skips most compilation.
    ``JAXBP_COMPILATION_CACHE=0`` turns both off; a ``JAX_COMPILATION_CACHE_DIR``
    already set is respected; the default place is ``~/.cache/jaxbp/xla``
    (under ``XDG_CACHE_HOME`` when that is set).
    """
    if os.environ.get("JAXBP_COMPILATION_CACHE", "1") == "0":
        return
    import jax

    if not jax.config.jax_compilation_cache_dir:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        jax.config.update(
            "jax_compilation_cache_dir", str(Path(base) / "jaxbp" / "xla")
        )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    executable_cache.enable(
        Path(jax.config.jax_compilation_cache_dir) / "jaxbp-executables"
    )
