"""The key of a traced program: everything JAX lowers and compiles it from,
written out as text and hashed (``jaxbp.executable_cache`` finds programs by it).

:func:`program_key` is a SHA-256 of:

- the jaxpr, walked in full (:func:`describe`): every equation's primitive,
  parameters, variables and their types, its context (which JAX reads when
  lowering), literal and constant values by their bytes (``str(jaxpr)``
  would not do: it prints an array literal as ``[...]``);
- the function's name, the arguments' donation and shardings (one device:
  its id and memory kind), and the compile options asked for (the ``jit``
  is one without shardings, layouts or donation given);
- every JAX configuration value as the calling thread sees it (scoped
  settings such as ``jax.enable_x64`` are per thread), ``XLA_FLAGS``;
- the jax and jaxlib versions, the backend and its version, the devices and
  the CPU: model, features, cores (an executable is machine code for it).

What cannot be written down as data raises :class:`Uncacheable`: a
parameter holding a Python callable that lowering may call, a parameter or
type the walk does not know (refused, not skipped: a JAX that adds one makes
programs uncacheable, not wrongly keyed), a mesh (whose device order its repr
omits), effects, more than one device or process.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import os
import platform
from pathlib import Path

import numpy as np

#: Bumped when what the key holds changes.
VERSION = 1

#: Parameters holding Python callables that lowering never calls: the
#: derivative rules of ``custom_jvp``/``custom_vjp`` functions (JAX lowers
#: both primitives from ``call_jaxpr`` alone, in ``custom_derivatives.
#: _custom_jvp_vjp_call_lowering``; differentiation happened when tracing).
NOT_LOWERED = {
    ("custom_jvp_call", "jvp_jaxpr_fun"),
    ("custom_jvp_call", "jvp_jaxpr_thunk"),
    ("custom_vjp_call", "fwd_jaxpr_thunk"),
    ("custom_vjp_call", "bwd"),
    ("custom_vjp_call", "out_trees"),
}

#: JAX's stateless marker types in jaxpr parameters (an inner ``jit``'s
#: unspecified shardings): written as their name.
STATELESS_MARKERS = {"UnspecifiedValue"}


class Uncacheable(Exception):
    """A program whose key could not be made complete (it is compiled as usual)."""


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
        f"version {VERSION}",
        traced.fun_name,
        describe(traced.jaxpr),
        describe(donated),
        describe([getattr(x, "sharding", "host") for x in jax.tree.leaves(args)]),
        describe(dict(sorted(options.items()))),
        settings(),
        _machine(),
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def settings() -> str:
    """Every JAX configuration value as this thread sees it, and ``XLA_FLAGS``."""
    import jax

    values = jax.config.values  # each State's value as this thread sees it
    return repr(sorted(values.items())) + "\n" + os.environ.get("XLA_FLAGS", "")


@functools.lru_cache(maxsize=1)
def _machine() -> str:
    """The jax and jaxlib versions, the backend, its devices and the CPU (its
    model, features and count of cores: XLA may compile for the threads it
    will have)."""
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
            os.cpu_count(),
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
