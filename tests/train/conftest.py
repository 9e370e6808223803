"""Fixtures of the training tests: small datasets and a float64 problem."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import backprop, data


@pytest.fixture(scope="session")
def blobs():
    """Three Gaussian blobs in 2-D (210 training examples)."""
    return data.load("blobs", n=300, seed=0)


@pytest.fixture(scope="session")
def xor():
    return data.load("xor", n=400, seed=0)


@pytest.fixture(scope="session")
def sine():
    """A regression set (mse): 100 training examples from n=140."""
    return data.load("sine", n=140)


@pytest.fixture(scope="module")
def problem64():
    """(model, params, state, x, y, prepared targets): a float64 tanh MLP."""
    model = jaxbp.mlp([4, 6, 3], "tanh", dtype=jnp.float64)
    params, state = model.init_with_state(jax.random.key(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(10, 4)), jnp.float64)
    y = jnp.asarray(rng.integers(0, 3, 10), jnp.int32)
    x, target, _, state = backprop.prepare(model, params, x, y, "cross_entropy", state)
    return model, params, state, x, y, target
