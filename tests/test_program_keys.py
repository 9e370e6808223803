"""jaxbp.program_keys: a program's key changes with everything it is compiled
from, and what cannot be written down is refused."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import AFFINE_X as X
from helpers import affine

from jaxbp import compilation, program_keys


def key_of(fn, *args, options=None):
    traced = jax.jit(fn).trace(*args)
    return program_keys.program_key(traced, args, options or {})


def test_the_same_program_has_the_same_key():
    """Traced afresh (``key_of`` makes a new ``jit``), with other values."""
    assert key_of(affine, X) == key_of(affine, X.copy() + 1)


@pytest.mark.parametrize(
    "other",
    [
        lambda x: jnp.tanh(x) @ x.T + 2.0,  # a scalar literal
        lambda x: jnp.sin(x) @ x.T + 1.0,  # a primitive
        lambda x: jnp.tanh(x) @ x.T + jnp.arange(3.0),  # an array constant
        lambda x: jnp.tanh(x) @ x.T + jnp.arange(3.0) * 2,  # its values
        lambda x: jnp.sum(jnp.tanh(x), axis=0) + 1.0,  # a parameter (axes)
    ],
)
def test_a_different_program_has_a_different_key(other):
    keys = {key_of(affine, X), key_of(other, X)}
    assert len(keys) == 2


def test_the_key_covers_types_options_settings_and_xla_flags(monkeypatch):
    base = key_of(affine, X)
    assert key_of(affine, X[:2]) != base  # shape
    assert key_of(affine, X.astype(jnp.bfloat16)) != base  # dtype
    assert key_of(affine, X, options=compilation.FAST_COMPILE) != base
    with jax.default_matmul_precision("highest"):  # a setting the jaxpr omits
        assert key_of(affine, X) != base
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_enable_fast_math=false")
    assert key_of(affine, X) != base


def test_the_key_reads_the_settings_of_the_calling_thread():
    """Scoped settings are per thread: the key is the caller's."""
    keys = {}

    def in_a_thread():
        with jax.default_matmul_precision("highest"):
            keys["thread"] = key_of(affine, X)

    with jax.default_matmul_precision("highest"):
        keys["here"] = key_of(affine, X)
    worker = threading.Thread(target=in_a_thread)
    worker.start()
    worker.join()
    assert keys["thread"] == keys["here"] != key_of(affine, X)


def test_describe_writes_out_array_literals_that_the_printer_elides():
    """``str(jaxpr)`` prints a non-scalar literal as ``[...]``; the key must not."""
    a = program_keys.describe(np.arange(4))
    b = program_keys.describe(np.arange(4) + 1)
    assert a != b


def test_programs_that_cannot_be_keyed_are_refused():
    def with_callback(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    def with_effect(x):
        jax.debug.print("x {}", x)
        return x

    for fn in (with_callback, with_effect):
        with pytest.raises(program_keys.Uncacheable):
            key_of(fn, X)
