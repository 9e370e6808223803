"""How jaxbp compiles: the persistent compilation cache and XLA's fast-compile options.

This module uses jax only inside its functions, and importing jaxbp imports
jax but starts no backend (jax starts it at the first array), so a process
can import :func:`fast_compile_xla_flags` and still put its result in
``XLA_FLAGS`` in time (the test suite's ``conftest.py``, an experiment script).
"""

from __future__ import annotations

import os
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
    try:
        return lowered.compile(FAST_COMPILE)
    except jax.errors.JaxRuntimeError:  # an XLA without one of these options
        return lowered.compile()


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
