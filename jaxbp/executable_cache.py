"""Compiled programs kept on disk and found before lowering.

JAX's persistent compilation cache keys a program by its lowered MLIR module,
so a warm start still traces every program and lowers it to MLIR (the larger
cost) before it can load it. This cache keys a program by what JAX lowers
*from*, so a warm start traces, hashes and loads. The key is a SHA-256 of:

- the jaxpr, walked in full (:func:`describe`): every equation's primitive,
  parameters, variables and their types, its context (which JAX reads when
  lowering), literal and constant values by their bytes (``str(jaxpr)``
  would not do: it prints an array literal as ``[...]``);
- the function's name, the arguments' donation and shardings (one device:
  its id and memory kind), and the compile options asked for (the ``jit``
  itself is made here, with no shardings, layouts or donation);
- every JAX configuration value as the calling thread sees it (scoped
  settings such as ``jax.enable_x64`` are per thread), ``XLA_FLAGS``;
- the jax and jaxlib versions, the backend and its version, the devices and
  the CPU (an executable is machine code for it).

Only what can be keyed completely is cached. A program is compiled as
``jax.jit`` compiles it, every time, when any part of it cannot be written
down as data: a parameter holding a Python callable that lowering may call,
a parameter or type JAX may add later (unknown types are refused, not
skipped), a mesh (whose device order its repr omits), effects, more than one
device or process. A program XLA will not serialize is run and not stored.
An entry that cannot be loaded, or that holds another key's program or other
types, is compiled again and rewritten; entries are written atomically, and
the least recently used are deleted beyond :data:`MAX_BYTES`.

Entries are ``jax.experimental.serialize_executable`` payloads, which are
pickles: like JAX's own cache, the directory is trusted (the user's own).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import os
import pickle
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

#: Bumped when the key or the entry format changes.
FORMAT = 1

#: The most the entries take on disk; the least recently used go first.
MAX_BYTES = 1 << 30

#: The ``jax.monitoring`` events of computing a program's key and of
#: loading it from this cache (spans in ``time.time()`` seconds, as JAX's).
KEY_EVENT = "/jaxbp/executable_cache/key_duration"
LOAD_EVENT = "/jaxbp/executable_cache/load_duration"

#: Parameters holding Python callables that lowering never calls: the
#: derivative rules of ``custom_jvp``/``custom_vjp`` functions (lowering
#: uses ``call_jaxpr``; differentiation already happened when tracing).
NOT_LOWERED = {
    ("custom_jvp_call", "jvp_jaxpr_fun"),
    ("custom_jvp_call", "jvp_jaxpr_thunk"),
    ("custom_vjp_call", "fwd_jaxpr_thunk"),
    ("custom_vjp_call", "bwd"),
    ("custom_vjp_call", "out_trees"),
}

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

#: JAX's stateless marker types in jaxpr parameters (an inner ``jit``'s
#: unspecified shardings): written as their name.
STATELESS_MARKERS = {"UnspecifiedValue"}

_directory: Path | None = None


class Uncacheable(Exception):
    """A program whose key could not be made complete (it is compiled as usual)."""


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
    memory, and finds it on disk before lowering. Called with tracers (inside
    another ``jit``), it is a plain inner ``jax.jit(fn)``: the outer program's
    options apply. ``compiler_options`` XLA rejects fall back to the defaults.
    """
    import jax

    plain = jax.jit(fn)
    options = dict(compiler_options or {})
    optioned = jax.jit(fn, compiler_options=options) if options else plain
    programs: dict = {}

    @functools.wraps(fn)
    def call(*args):
        if _traced(args):
            return plain(*args)
        if _directory is None:
            return _options_else_default(lambda: optioned(*args), lambda: plain(*args))
        signature = _signature(args)
        program = programs.get(signature)
        if program is None:
            program = programs[signature] = _load_or_compile(plain, args, options)
        return program(*args)

    return call


def _traced(args) -> bool:
    import jax

    return any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves(args))


def _options_else_default(optioned, default):
    """``optioned()``, or ``default()`` on an XLA without one of the options."""
    import jax

    try:
        return optioned()
    except jax.errors.JaxRuntimeError:
        return default()


def _signature(args) -> tuple:
    """What selects a compiled program for ``args`` in memory, as ``jax.jit``'s
    own dispatch does: structure, types (weak types included), shardings, and
    the JAX settings (all of them: a superset of those that shape a trace)."""
    import jax

    leaves, tree = jax.tree.flatten(args)
    kinds = tuple((jax.typeof(x), getattr(x, "sharding", None)) for x in leaves)
    return tree, kinds, _settings()


def _load_or_compile(jitted, args, options):
    """The compiled program for ``args``: from the cache, else compiled (and
    stored when its key is complete)."""
    traced = jitted.trace(*args)
    start = time.time()
    try:
        key = program_key(traced, args, options)
    except Uncacheable:
        key = None
    _record(KEY_EVENT, start, traced)
    if key is None:
        return _compile(traced, options)
    path = _directory / f"{key}.exe"
    program = _load(path, traced, key)
    if program is None:
        program = _compile(traced, options)
        _store(path, program, key)
    return program


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
    one of the options."""
    if not options:
        return lowered.compile()
    return _options_else_default(lambda: lowered.compile(options), lowered.compile)


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


def program_key(traced, args, options: dict) -> str:
    """The SHA-256 key of ``traced`` (``jax.jit(fn).trace(*args)``, a ``jit``
    without shardings or donation given) compiled with ``options`` (see the
    module docstring); raises :class:`Uncacheable` when it cannot be complete."""
    import jax

    if jax.process_count() != 1 or jax.device_count() != 1:
        raise Uncacheable("more than one device or process")
    if not (jax.sharding.get_abstract_mesh().empty and jax.sharding.get_mesh().empty):
        raise Uncacheable("a mesh in context")
    donated = [a.donated for a in jax.tree.leaves(traced.args_info)]
    parts = [
        f"format {FORMAT}",
        traced.fun_name,
        describe(traced.jaxpr),
        describe(donated),
        describe([getattr(x, "sharding", "host") for x in jax.tree.leaves(args)]),
        describe(dict(sorted(options.items()))),
        _settings(),
        _machine(),
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _settings() -> str:
    """Every JAX configuration value as this thread sees it, and ``XLA_FLAGS``."""
    import jax

    values = jax.config.values  # each State's value as this thread sees it
    return repr(sorted(values.items())) + "\n" + os.environ.get("XLA_FLAGS", "")


@functools.lru_cache(maxsize=1)
def _machine() -> str:
    """The jax and jaxlib versions, the backend, its devices and the CPU."""
    import jax
    import jaxlib

    backend = jax.devices()[0].client
    devices = [(d.id, d.platform, d.device_kind) for d in jax.devices()]
    return repr(
        (
            jax.__version__,
            jaxlib.__version__,
            backend.platform,
            backend.platform_version,
            devices,
            platform.machine(),
            _cpu_features(),
        )
    )


def _cpu_features() -> str:
    """The CPU's model and feature flags (``/proc/cpuinfo``), where readable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags")
    lines = {
        line.split(":")[0].strip(): line for line in text.splitlines() if ":" in line
    }
    return "\n".join(lines.get(name, "") for name in wanted)


def describe(x) -> str:
    """``x`` (a jaxpr, or a parameter of one) written out in full as text,
    every variable named by its first appearance; raises :class:`Uncacheable`
    for what cannot be written out."""
    return _Describer().value(x)


class _Describer:
    def __init__(self):
        self.names: dict = {}

    def var(self, v) -> str:
        """A variable by its number (a dropped one gets a number of its own), or
        a literal by its value."""
        if _is_jax(v, "Literal"):
            return f"lit({self.array(np.asarray(v.val))}:{self.aval(v.aval)})"
        if not _is_jax(v, "Var", "DropVar"):
            raise Uncacheable(f"a variable of type {type(v).__qualname__}")
        name = self.names.setdefault(v, len(self.names))
        return f"v{name}:{self.aval(v.aval)}"

    def aval(self, aval) -> str:
        sharding = getattr(aval, "sharding", None)
        if sharding is not None and not sharding.mesh.empty:
            raise Uncacheable("an array type sharded over a mesh")
        memory = getattr(aval, "memory_space", None)
        return f"{aval!r}/{memory}"

    def array(self, a: np.ndarray) -> str:
        data = np.ascontiguousarray(a)
        digest = hashlib.sha256(data.tobytes()).hexdigest()
        return f"array({data.dtype},{data.shape},{digest})"

    def jaxpr(self, jaxpr) -> str:
        if jaxpr.effects:
            raise Uncacheable("effects")
        head = [self.var(v) for v in (*jaxpr.constvars, *jaxpr.invars)]
        body = [self.eqn(e) for e in jaxpr.eqns]
        out = [self.var(v) for v in jaxpr.outvars]
        return f"jaxpr({len(jaxpr.constvars)};{','.join(head)}|{';'.join(body)}|{out})"

    def eqn(self, eqn) -> str:
        name = eqn.primitive.name
        params = {
            k: ("<not lowered>" if (name, k) in NOT_LOWERED else self.value(v))
            for k, v in sorted(eqn.params.items())
        }
        ins = ",".join(self.var(v) for v in eqn.invars)
        outs = ",".join(self.var(v) for v in eqn.outvars)
        return f"{outs}={name}{params}({ins}) ctx={self.context(eqn.ctx)}"

    def context(self, ctx) -> str:
        """The equation's context (read by lowering: threefry's partitionable
        form, compute type, XLA metadata); its mesh must be empty."""
        if not ctx.cur_abstract_mesh.empty:
            raise Uncacheable("an equation under a mesh")
        fields = sorted(set(type(ctx).__slots__) - {"__weakref__", "cur_abstract_mesh"})
        return ",".join(f"{k}={self.value(getattr(ctx, k, None))}" for k in fields)

    def value(self, x) -> str:
        import jax

        if x is None or isinstance(x, (bool, int, float, complex, str, bytes)):
            return f"{type(x).__name__}:{x!r}"
        if _is_jax(x, "ClosedJaxpr"):
            consts = [self.array(np.asarray(c)) for c in x.consts]
            return f"closed({self.jaxpr(x.jaxpr)};{consts})"
        if _is_jax(x, "Jaxpr"):
            return self.jaxpr(x)
        if isinstance(x, (np.ndarray, np.generic, jax.Array)):
            return self.array(np.asarray(x))
        if isinstance(x, np.dtype) or (
            isinstance(x, type) and issubclass(x, np.generic)
        ):
            return f"dtype:{np.dtype(x)}"
        if isinstance(x, enum.Enum):
            return f"{type(x).__qualname__}.{x.name}"
        if isinstance(x, jax.core.AbstractValue):
            return self.aval(x)
        if isinstance(x, jax.sharding.SingleDeviceSharding):
            return repr(x)  # its device and memory kind
        if _is_jax(x, *STATELESS_MARKERS):
            return type(x).__qualname__
        if _is_jax(x, "PRNGImpl"):  # JAX's registered implementations, by name
            return f"prng:{x.name}"
        if isinstance(x, (jax.sharding.Mesh, jax.sharding.AbstractMesh)):
            if not x.empty:
                raise Uncacheable("a mesh")
            return "no mesh"
        if isinstance(x, tuple) and hasattr(x, "_fields"):
            fields = ",".join(f"{k}={self.value(v)}" for k, v in zip(x._fields, x))
            return f"{type(x).__qualname__}({fields})"
        if isinstance(x, (tuple, list)):
            return f"{type(x).__name__}[{','.join(self.value(v) for v in x)}]"
        if isinstance(x, frozenset):
            return f"frozenset{sorted(self.value(v) for v in x)}"
        if isinstance(x, dict):
            return "{" + ",".join(f"{k!r}:{self.value(v)}" for k, v in x.items()) + "}"
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            fields = dataclasses.fields(x)
            inner = ",".join(
                f"{f.name}={self.value(getattr(x, f.name))}" for f in fields
            )
            return f"{type(x).__qualname__}({inner})"
        raise Uncacheable(f"a parameter of type {type(x).__qualname__}")


def _is_jax(x, *names: str) -> bool:
    """Whether ``x`` is of one of JAX's own types of these names. (jaxprs'
    types are public only in ``jax.extend``, whose import costs more than a
    warm start's keying; an unknown type makes a program uncacheable.)"""
    kind = type(x)
    return kind.__qualname__ in names and kind.__module__.startswith("jax.")
