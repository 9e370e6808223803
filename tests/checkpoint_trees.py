"""An example checkpoint tree (every kind of leaf) and bit-exact comparisons,
shared by the checkpoint tests."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxbp
from jaxbp import optim


def assert_trees_bit_equal(a, b):
    """Same structure and every leaf bit for bit (keys compared by their data)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)

    def bits(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(leaf)), "key"
        array = np.asarray(leaf)
        return array.view(f"u{array.dtype.itemsize}"), array.dtype

    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        (bx, tx), (by, ty) = bits(x), bits(y)
        assert tx == ty
        np.testing.assert_array_equal(bx, by)


def assert_same_history(a, b):
    """JSON text compares NaN/None/inf exactly and floats by their repr (bit for bit)."""
    assert json.dumps(a) == json.dumps(b)


def example_tree():
    """A tree with params, optimizer states of both libraries, keys, odd dtypes."""
    model = jaxbp.mlp([3, 5, 2])
    params = model.init(jax.random.key(1))
    params = jax.tree.map(
        lambda p: (
            p + 0.1 * jnp.sin(jnp.arange(p.size)).reshape(p.shape).astype(p.dtype)
        ),
        params,
    )
    jaxbp_adam, optax_adam = optim.adam(1e-3), optax.adam(1e-3)
    grads = jax.tree.map(jnp.cos, params)
    s1 = jaxbp_adam.update(grads, jaxbp_adam.init(params), params)[1]
    s2 = optax_adam.update(grads, optax_adam.init(params), params)[1]
    return {
        "params": params,
        "jaxbp_adam": s1,
        "optax_adam": s2,
        "optax_sgd": optax.sgd(0.1, momentum=0.9).init(params),
        "key": jax.random.fold_in(jax.random.key(7), 3),
        "raw_key": jax.random.PRNGKey(5),
        "f64": np.array([np.pi, -0.0, np.inf, np.nan], np.float64),
        "bf16": jnp.asarray([1.5, -2.25], jnp.bfloat16),
        "count": jnp.asarray(7, jnp.int32),
        "flag": np.bool_(True),
    }


def zeros_like(tree):
    """A template: same structure, shapes and dtypes, different values."""

    def zero(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return jnp.zeros_like(leaf)

    return jax.tree.map(zero, tree)


HISTORY = [
    {"epoch": 1, "train_loss": 0.1 + 0.2, "val_loss": None, "val_accuracy": None},
    {"epoch": 2, "train_loss": math.nan, "val_loss": math.inf, "val_accuracy": 1 / 3},
]
