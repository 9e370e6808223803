"""jaxbp.draws: jax.random's draws from their random bits, and init in two programs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxbp import draws

DTYPES = ("float32", "float64", "float16", "bfloat16")
shapes = st.lists(st.integers(1, 9), min_size=0, max_size=3).map(tuple)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@given(shape=shapes, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**32 - 1))
def test_normal_from_bits_is_jax_random_normal_bit_for_bit(shape, dtype, seed):
    key = jax.random.key(seed)

    @jax.jit
    def from_bits(key):
        bits = jax.random.bits(key, shape, draws.bits_dtype(dtype))
        return draws.normal_from_bits(bits, dtype)

    expected = jax.jit(lambda k: jax.random.normal(k, shape, dtype))(key)
    assert same_bits(from_bits(key), expected)


@given(
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**32 - 1),
    low=st.floats(-10, 10),
    width=st.floats(0.01, 10),
)
def test_uniform_from_bits_is_jax_random_uniform_bit_for_bit(
    shape, dtype, seed, low, width
):
    key = jax.random.key(seed)
    bounds = (low, low + width)

    @jax.jit
    def from_bits(key):
        bits = jax.random.bits(key, shape, draws.bits_dtype(dtype))
        return draws.uniform_from_bits(bits, dtype, *bounds)

    expected = jax.jit(lambda k: jax.random.uniform(k, shape, dtype, *bounds))(key)
    assert same_bits(from_bits(key), expected)


def test_outside_two_stage_the_draws_are_jax_randoms(key):
    assert same_bits(
        draws.normal(key, (3, 4), jnp.float32),
        jax.random.normal(key, (3, 4), jnp.float32),
    )
    assert same_bits(
        draws.uniform(key, (5,), jnp.float64, -2.0, 3.0),
        jax.random.uniform(key, (5,), jnp.float64, -2.0, 3.0),
    )


def mixed_init(key):
    """Staged draws of several shapes and dtypes, a draw made with jax.random
    directly, and arithmetic on the draws."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    w = 0.3 * draws.normal(k1, (6, 5))
    u = draws.uniform(k2, (5,), jnp.float64, -0.5, 0.5)
    direct = jax.random.normal(k3, (2,))
    v = draws.normal(k4, (4,), jnp.float64) + 1.0
    return {"w": w, "u": u, "direct": direct, "v": v}


def test_two_stage_equals_the_one_program_bit_for_bit(key):
    bits_of, init_from_bits = draws.two_stage(mixed_init)
    drawn = jax.jit(bits_of)(key)
    assert [b.dtype for b in drawn] == [jnp.uint32, jnp.uint64, jnp.uint64]
    got = jax.jit(init_from_bits)(key, drawn)
    expected = jax.jit(mixed_init)(key)
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        assert same_bits(a, b)


def test_an_init_that_draws_differently_the_second_time_is_an_error(key):
    calls = []

    def unsteady(key):
        calls.append(1)
        return draws.normal(key, (len(calls),))

    bits_of, init_from_bits = draws.two_stage(unsteady)
    drawn = bits_of(key)
    with pytest.raises(RuntimeError, match="drew differently"):
        init_from_bits(key, drawn)
