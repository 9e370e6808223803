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
import os
import threading
from pathlib import Path

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
    if not fast:
        return lowered.compile()
    return _fast_else_default(lambda: lowered.compile(FAST_COMPILE), lowered.compile)


def jit_fast(fn):
    """``jax.jit(fn)`` compiled with :data:`FAST_COMPILE`, for programs whose
    results do not depend on XLA's optimisations: integer work (random bits,
    key splitting, permutations) is exact at any optimisation level. Falls
    back to the default options on an XLA without one of them. Traced inside
    another program (``jit``, ``eval_shape``), it is a plain inner ``jit``:
    the outer program's options apply."""
    import jax

    fast, default = jax.jit(fn, compiler_options=FAST_COMPILE), jax.jit(fn)

    def call(*args):
        if any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(args)):
            return default(*args)
        return _fast_else_default(lambda: fast(*args), lambda: default(*args))

    return call


def _fast_else_default(fast, default):
    """``fast()`` (compiles with :data:`FAST_COMPILE`), or ``default()`` on an
    XLA without one of those options."""
    import jax

    try:
        return fast()
    except jax.errors.JaxRuntimeError:
        return default()


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
#: lowering it to MLIR, and XLA's compilation (or a persistent-cache load).
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
LOWER_EVENT = "/jax/core/compile/jaxpr_to_mlir_module_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclasses.dataclass(eq=False)
class CompileLog:
    """What a block of code compiled (:func:`compile_log`): ``programs`` XLA
    programs compiled or loaded from the persistent cache, and ``seconds`` of
    wall time spent tracing, lowering or compiling (overlapping spans, such
    as a jitted function traced inside another, counted once)."""

    programs: int = 0
    spans: list = dataclasses.field(default_factory=list, repr=False)
    threads: set = dataclasses.field(default_factory=set, repr=False)

    def include_this_thread(self) -> None:
        """Log what the calling thread compiles too."""
        self.threads.add(threading.get_ident())

    @property
    def seconds(self) -> float:
        total, reach = 0.0, float("-inf")
        for start, end in sorted(self.spans):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total


@contextlib.contextmanager
def compile_log():
    """Within the ``with``, log what this thread compiles, and what the
    background compiles it starts meanwhile compile (:class:`CompiledAhead`):
    yields a :class:`CompileLog` (read it after the block)."""
    from jax import monitoring

    log = CompileLog()
    log.include_this_thread()
    logs = _open_logs()
    logs.append(log)

    def on_span(event, start, end, **_):
        if threading.get_ident() not in log.threads:
            return
        if event in (TRACE_EVENT, LOWER_EVENT, COMPILE_EVENT):
            log.spans.append((start, end))
        if event == COMPILE_EVENT:
            log.programs += 1

    monitoring.register_event_time_span_listener(on_span)
    try:
        yield log
    finally:
        monitoring.unregister_event_time_span_listener(on_span)
        logs.remove(log)


_logs = threading.local()


def _open_logs() -> list:
    """The :func:`compile_log` blocks this thread is in, innermost last."""
    if not hasattr(_logs, "open"):
        _logs.open = []
    return _logs.open


class CompiledAhead:
    """``jitted`` lowered for the arguments ``specs`` (``jax.ShapeDtypeStruct``
    pytrees) and compiled in a background thread, while the caller goes on
    with other work: XLA compiles without holding Python's lock, so the
    compile overlaps the caller's own (``fit`` compiles its epoch this way
    while the initialisation's programs compile and run). Tracing and
    lowering happen here, in the caller's thread, under its JAX settings
    (``jax.enable_x64`` and the like are per thread).

    Calling it waits for the compile, then runs the executable: the same
    program ``jitted(*args)`` would compile and run. Arguments of other
    shapes or placements than the specs (which the executable refuses with a
    ``TypeError`` or ``ValueError`` at the first call) run through ``jitted``
    itself from then on. The background compile is logged by the
    :func:`compile_log` blocks the caller is in, and an error in it is raised
    at the first call.
    """

    def __init__(self, jitted, specs):
        self._jitted, self._run = jitted, None
        self._done = threading.Event()
        self._outcome = None
        lowered = jitted.lower(*specs)
        thread = threading.Thread(
            target=self._compile,
            args=(lowered, list(_open_logs())),
            name="jaxbp-compile",
            daemon=True,
        )
        thread.start()

    def _compile(self, lowered, logs) -> None:
        try:
            for log in logs:
                log.include_this_thread()
            self._outcome = (lowered.compile(), None)
        except BaseException as error:  # noqa: BLE001 (raised at the first call)
            self._outcome = (None, error)
        finally:
            self._done.set()

    def __call__(self, *args):
        if self._run is not None:
            return self._run(*args)
        self._done.wait()
        executable, error = self._outcome
        if error is not None:
            raise error
        try:
            out = executable(*args)
            self._run = executable
        except (TypeError, ValueError):  # not what it was compiled for
            out = self._jitted(*args)
            self._run = self._jitted
        return out


def enable_compilation_cache() -> None:
    """Keep compiled programs on disk between runs (JAX's persistent cache).

    A second ``jaxbp train`` with the same model skips most compilation.
    ``JAXBP_COMPILATION_CACHE=0`` turns it off; a ``JAX_COMPILATION_CACHE_DIR``
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
