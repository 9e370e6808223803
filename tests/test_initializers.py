"""Initializer variances on large layers, against the papers' formulas."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import initializers, mlp


@pytest.mark.parametrize(
    "name, variance",
    [
        ("xavier", lambda fi, fo: 2 / (fi + fo)),
        ("he", lambda fi, fo: 2 / fi),
        ("lecun", lambda fi, fo: 1 / fi),
        ("normal", lambda fi, fo: 1.0),
    ],
)
@pytest.mark.parametrize("shape", [(1000, 500), (300, 2000)])
def test_variance(name, variance, shape):
    w = initializers.get(name)(jax.random.key(1), shape, jnp.float64)
    assert w.shape == shape and w.dtype == jnp.float64
    want = variance(*shape)
    # the sample variance of n = 5e5..6e5 normals is within ~0.5% (3 sigma)
    assert abs(float(jnp.var(w)) / want - 1) < 0.01
    assert abs(float(jnp.mean(w))) < 4 * np.sqrt(want / w.size)


def test_plain_normal_std():
    w = initializers.normal(0.01)(jax.random.key(2), (800, 800), jnp.float32)
    assert w.dtype == jnp.float32
    assert abs(float(jnp.std(w)) / 0.01 - 1) < 0.01


def test_conv_kernel_fans():
    assert initializers.fans((3, 3, 16, 32)) == (144, 288)
    w = initializers.he(jax.random.key(3), (5, 5, 64, 128), jnp.float64)
    assert abs(float(jnp.var(w)) * (5 * 5 * 64) / 2 - 1) < 0.02


def test_mlp_default_init_depends_on_activation():
    assert initializers.default_for("relu") == "he"
    assert initializers.default_for("tanh") == "xavier"
    model = mlp([2000, 1000], activation="relu")
    w = model.init(jax.random.key(0))[0]["w"]
    assert abs(float(jnp.var(w)) * 2000 / 2 - 1) < 0.02
    b = model.init(jax.random.key(0))[0]["b"]
    assert not jnp.any(b)


def test_errors():
    with pytest.raises(ValueError, match=r"unknown init 'glorot'.*xavier, he, lecun"):
        initializers.get("glorot")
    with pytest.raises(ValueError, match="std must be > 0"):
        initializers.normal(0.0)
    with pytest.raises(ValueError, match="unknown init"):
        mlp([3, 4], init="zeros")
