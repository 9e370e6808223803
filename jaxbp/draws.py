"""The random draws of initialisation: ``jax.random``'s, compiled as two programs.

A layer's ``init`` draws its weights with :func:`normal` and :func:`uniform`.
Outside :func:`two_stage` they are ``jax.random.normal`` and
``jax.random.uniform`` themselves. Inside it (what ``Model.init_with_state``
uses), the same draws are made in two compiled programs, because almost all
of the time to compile an initialisation is XLA optimising threefry, the
integer hash behind the random bits:

1. the *bits* program computes every draw's random bits,
   ``jax.random.bits(key, shape)`` (integer arithmetic: exact whatever XLA's
   optimisation level, so it is compiled with XLA's fast-compile options);
2. the *floats* program turns those bits into the draws as ``jax.random``
   does (:func:`uniform_from_bits`, :func:`normal_from_bits`) and runs the
   rest of every layer's ``init``, compiled with XLA's default options.

The result is bit for bit ``jax.jit`` of the one-program initialisation
(tested for every model preset, float32 and float64): only the compile is
shorter. ``jax.random`` makes a uniform draw in ``[lo, hi)`` from random
bits by putting the top mantissa bits of each word under the exponent of 1.0
(a float in ``[1, 2)``), subtracting 1 and scaling; a normal draw is
``√2 · erf⁻¹(u)`` of a uniform ``u`` in ``(-1, 1)``.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_local = threading.local()


def normal(key, shape, dtype=jnp.float32):
    """Standard normal draws of ``shape``: ``jax.random.normal(key, shape, dtype)``."""
    stage = _stage()
    if stage is None:
        return jax.random.normal(key, shape, dtype)
    return stage(key, tuple(shape), dtype, normal_from_bits, ())


def uniform(key, shape, dtype=jnp.float32, minval=0.0, maxval=1.0):
    """Uniform draws in ``[minval, maxval)``: ``jax.random.uniform(key, shape,
    dtype, minval, maxval)``."""
    stage = _stage()
    if stage is None:
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    return stage(key, tuple(shape), dtype, uniform_from_bits, (minval, maxval))


def bits_dtype(dtype):
    """The unsigned integer type of the random words ``jax.random`` draws
    floats of ``dtype`` from (as wide as the float; at least 8 mantissa bits)."""
    finfo = jnp.finfo(dtype)
    return jnp.dtype(f"uint{finfo.bits if finfo.nmant >= 8 else 8}")


@functools.partial(jax.jit, static_argnums=1)
def uniform_from_bits(bits, dtype, minval=0.0, maxval=1.0):
    """``jax.random.uniform``'s draws in ``[minval, maxval)`` from its random bits.

    ``f = bitcast(bits >> (nbits − nmant) | bits(1.0)) − 1`` lies in ``[0, 1)``;
    the draw is ``max(minval, f · (maxval − minval) + minval)``. Jitted with
    the bounds as arguments, as ``jax.random.uniform`` is, so that XLA sees
    the same program (at low optimisation levels its results depend on that).
    """
    finfo = jnp.finfo(dtype)
    uint = jnp.dtype(f"uint{finfo.bits}")
    bits = bits.astype(uint)
    shift = jnp.array(bits_dtype(dtype).itemsize * 8 - finfo.nmant, uint)
    one_bits = jnp.asarray(np.array(1.0, dtype).view(uint), dtype=uint)
    float_bits = lax.bitwise_or(lax.shift_right_logical(bits, shift), one_bits)
    floats = lax.bitcast_convert_type(float_bits, dtype) - jnp.array(1.0, dtype)
    minval = lax.broadcast_to_rank(lax.convert_element_type(minval, dtype), bits.ndim)
    maxval = lax.broadcast_to_rank(lax.convert_element_type(maxval, dtype), bits.ndim)
    return lax.max(minval, floats * (maxval - minval) + minval)


@functools.partial(jax.jit, static_argnums=1)
def normal_from_bits(bits, dtype):
    """``jax.random.normal``'s draws from its random bits: ``√2 · erf⁻¹(u)``
    with ``u`` uniform in ``[nextafter(−1, 0), 1)``."""
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    u = uniform_from_bits(bits, dtype, lo, np.array(1.0, dtype))
    return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(u))


def two_stage(init: Callable) -> tuple[Callable, Callable]:
    """``(bits_of, init_from_bits)``: ``init(key)`` split into the two programs
    of the module docstring, to be compiled separately::

        drawn = bits_of(key)                 # every draw's random bits
        init(key) == init_from_bits(key, drawn)

    Inside both, every :func:`normal`/:func:`uniform` that ``init`` makes is
    staged: recorded by ``bits_of``, replayed in the same order by
    ``init_from_bits`` (whose keys then only feed draws made directly with
    ``jax.random``, if any).
    """
    return _recording_bits(init), _replaying_bits(init)


def _recording_bits(init):
    def bits_of(key):
        recorded = []

        def record(key, shape, dtype, transform, args):
            recorded.append(jax.random.bits(key, shape, bits_dtype(dtype)))
            return jnp.zeros(shape, dtype)

        with _staged(record):
            init(key)
        return recorded

    return bits_of


def _replaying_bits(init):
    def init_from_bits(key, drawn):
        pending = list(drawn)

        def replay(key, shape, dtype, transform, args):
            bits = pending.pop(0)
            if bits.shape != shape or bits.dtype != bits_dtype(dtype):
                raise RuntimeError("init drew differently in its two traces")
            return transform(bits, dtype, *args)

        with _staged(replay):
            out = init(key)
        if pending:
            raise RuntimeError("init drew differently in its two traces")
        return out

    return init_from_bits


def _stage():
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None


@contextlib.contextmanager
def _staged(handler):
    """Within the ``with``, this thread's draws go to ``handler``."""
    if not hasattr(_local, "stack"):
        _local.stack = []
    _local.stack.append(handler)
    try:
        yield
    finally:
        _local.stack.pop()
