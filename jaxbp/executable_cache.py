"""Compiled programs kept on disk and found before lowering.

JAX's persistent compilation cache keys a program by its lowered MLIR module,
so a warm start still traces every program and lowers it to MLIR (the larger
cost) before it can load it. This cache keys a program by what JAX lowers
*from* (``jaxbp.program_keys``: the jaxpr written out in full, the settings,
versions, devices and CPU), so a warm start traces, hashes and loads.

Only what can be keyed completely is cached: a program whose key cannot be
complete (``program_keys.Uncacheable``) is compiled as ``jax.jit`` compiles
it, every time. A program XLA will not serialize is run and not stored, and
so is one JAX loaded from its own persistent cache (it would be stored
without its kernels' code: :func:`_jax_cache_hits`). An
entry that cannot be loaded, or that holds another key's program or other
types, is compiled again and rewritten; entries are written atomically, and
the least recently used are deleted beyond :data:`MAX_BYTES`.

Entries are ``jax.experimental.serialize_executable`` payloads, which are
pickles: like JAX's own cache, the directory is trusted (the user's own).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import tempfile
import threading
import time
from pathlib import Path

from jaxbp import program_keys

#: Bumped when the entry format changes.
FORMAT = 1

#: The most the entries take on disk; the least recently used go first.
MAX_BYTES = 1 << 30

#: The ``jax.monitoring`` events of computing a program's key and of
#: loading it from this cache (spans in ``time.time()`` seconds, as JAX's).
KEY_EVENT = "/jaxbp/executable_cache/key_duration"
LOAD_EVENT = "/jaxbp/executable_cache/load_duration"

#: What loading a damaged, truncated or foreign entry raises.
_UNREADABLE = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    ImportError,
    RuntimeError,  # jax.errors.JaxRuntimeError (XLA rejecting the executable)
)

_directory: Path | None = None


def enable(directory) -> None:
    """Keep programs compiled by :func:`jit` in ``directory`` (made when needed)."""
    global _directory
    _directory = Path(directory)


def disable() -> None:
    """Stop using the cache (programs :func:`jit` already holds stay in memory)."""
    global _directory
    _directory = None


def directory() -> Path | None:
    """Where programs are kept; None when the cache is off."""
    return _directory


def jit(fn, compiler_options: dict | None = None):
    """``jax.jit(fn, compiler_options=...)``, whose programs are kept on disk
    while the cache is on (:func:`enable`).

    Called with concrete arguments, it keeps one compiled program per
    argument signature (pytree structure, types, shardings, JAX settings) in
    memory, and finds it on disk before lowering (with the cache off, it
    compiles the program as it would for the disk). Called with tracers
    (inside another ``jit``), it is a plain inner ``jax.jit(fn)``: the outer
    program's options apply. ``compiler_options`` XLA rejects fall back to
    the defaults; only compiling is retried, never running.
    """
    import jax

    plain = jax.jit(fn)
    options = dict(compiler_options or {})
    programs: dict = {}

    @functools.wraps(fn)
    def call(*args):
        leaves, tree = jax.tree.flatten(args)
        if any(isinstance(x, jax.core.Tracer) for x in leaves):
            return plain(*args)
        signature = _signature(leaves, tree)
        program = programs.get(signature)
        if program is None:
            program = programs[signature] = _load_or_compile(plain, args, options)
        return program(*args)

    return call


def _signature(leaves, tree) -> tuple:
    """What selects a compiled program in memory for arguments flattened to
    ``leaves`` and ``tree``, as ``jax.jit``'s own dispatch does: structure,
    types (weak types included), shardings, and the JAX settings as this
    thread sees them (all of them: a superset of those that shape a trace;
    as values, cheaper on every call than the key's text of them)."""
    import jax

    kinds = tuple((jax.typeof(x), getattr(x, "sharding", None)) for x in leaves)
    return tree, kinds, tuple(jax.config.values.items())


def _load_or_compile(jitted, args, options):
    """The compiled program for ``args``: compiled while the cache is off;
    else from the cache, or compiled (and stored when its key is complete)."""
    traced = jitted.trace(*args)
    if _directory is None:
        return _compile(traced, options)
    start = time.time()
    try:
        key = program_keys.program_key(traced, args, options)
    except program_keys.Uncacheable:
        key = None
    _record(KEY_EVENT, start, traced)
    if key is None:
        return _compile(traced, options)
    path = _directory / f"{key}.exe"
    program = _load(path, traced, key)
    if program is None:
        with _jax_cache_hits() as hits:
            program = _compile(traced, options)
        if not hits:  # one JAX loaded from its own cache serializes incompletely
            _store(path, program, key)
    return program


#: The ``jax.monitoring`` event of JAX loading a program from its persistent
#: compilation cache instead of compiling it.
JAX_CACHE_HIT = "/jax/compilation_cache/cache_hits"


@contextlib.contextmanager
def _jax_cache_hits():
    """Within the ``with``, collect JAX's persistent-cache hits in this thread.

    A program XLA:CPU loaded from JAX's cache serializes without the code of
    its kernels: stored here, it would load and then fail as it runs
    ("Function ... not found"). So such a program is not stored; JAX's cache
    keeps finding it (a run after an upgrade of jaxbp, whose keys changed)."""
    import jax

    hits, thread = [], threading.get_ident()

    def on_event(event, **_):
        if event == JAX_CACHE_HIT and threading.get_ident() == thread:
            hits.append(event)

    jax.monitoring.register_event_listener(on_event)
    try:
        yield hits
    finally:
        jax.monitoring.unregister_event_listener(on_event)


def _record(event: str, start: float, traced) -> None:
    """Report the span from ``start`` to now to ``jax.monitoring``'s listeners."""
    import jax

    jax.monitoring.record_event_time_span(
        event, start, time.time(), fun_name=traced.fun_name
    )


def _compile(traced, options):
    return compile_lowered(traced.lower(), options)


def compile_lowered(lowered, options: dict):
    """``lowered.compile(options)``, or with XLA's defaults on an XLA without
    one of the options (only compiling is retried, never running)."""
    import jax

    if not options:
        return lowered.compile()
    try:
        return lowered.compile(options)
    except jax.errors.JaxRuntimeError:
        return lowered.compile()


def _header(key: str) -> bytes:
    """An entry's first line: the format and the key it was stored under (a
    file copied or renamed to another key's name is not loaded)."""
    return f"jaxbp-executable {FORMAT} {key}\n".encode()


def _load(path: Path, traced, key: str):
    """The program stored at ``path`` for ``traced``, or None (absent, or an
    entry that cannot be loaded or is not ``traced``'s types: it is compiled
    again). A loaded entry is marked as used (its time, for eviction)."""
    import jax
    from jax.experimental import serialize_executable

    start = time.time()
    try:
        entry = path.read_bytes()
    except OSError:
        return None
    header = _header(key)
    if not entry.startswith(header):
        return None
    in_tree = jax.tree.structure(traced.args_info)
    try:
        program = serialize_executable.deserialize_and_load(
            entry[len(header) :], in_tree, traced.out_tree
        )
    except _UNREADABLE:  # a damaged or foreign entry: compile it again
        return None
    if _types(program) != _types(traced):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)
    _record(LOAD_EVENT, start, traced)
    return program


def _types(stage) -> tuple:
    """The shapes and dtypes of a traced or compiled program's arguments and
    results."""
    import jax

    def of(tree):
        return tuple((x.shape, str(x.dtype)) for x in jax.tree.leaves(tree))

    return of(stage.args_info), of(stage.out_info)


def _store(path: Path, program, key: str) -> None:
    """Write ``program`` to ``path`` atomically; a program JAX cannot
    serialize, or a directory that cannot be written, is skipped. (XLA
    refuses to serialize some programs, e.g. one this process compiled
    earlier through ``jax.jit``'s own dispatch and JAX kept in memory.)"""
    from jax.experimental import serialize_executable

    try:
        payload, _, _ = serialize_executable.serialize(program)
    except (ValueError, NotImplementedError, RuntimeError):  # RuntimeError: XLA's
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(_header(key) + payload)
        os.replace(tmp, path)
        evict(path.parent, MAX_BYTES)
    except OSError:
        return


def evict(directory: Path, max_bytes: int) -> None:
    """Delete the least recently used entries of ``directory`` until the
    rest take at most ``max_bytes`` (and any temporary file over an hour
    old: a write that never finished)."""
    entries, total = [], 0
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            stat = path.stat()
            if path.name.startswith(".tmp-") and time.time() - stat.st_mtime > 3600:
                path.unlink()
            elif path.suffix == ".exe":
                entries.append((stat.st_mtime, stat.st_size, path))
                total += stat.st_size
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
