"""L2 by hand: the penalty covers weight matrices and kernels only, and its
gradient is λW (checked against jax.grad in float64)."""

import jax
import jax.numpy as jnp
from helpers import assert_trees_rel_close

import jaxbp
from jaxbp import layers as L
from jaxbp import regularization


def test_only_weights_are_penalised():
    params = jaxbp.mlp([4, 6, 3], batchnorm=True).init(jax.random.key(0))
    mask = regularization.l2_mask(params)
    leaves = jax.tree.leaves_with_path(mask)
    assert leaves  # there is something to check
    for path, penalised in leaves:
        name = jax.tree_util.keystr(path)
        assert penalised == name.endswith("['w']"), name


def test_penalty_and_gradient_match_autodiff_in_float64():
    model = jaxbp.sequential(
        L.conv2d(2, 3),
        L.activation("tanh"),
        L.flatten(),
        L.dense(3),
        in_shape=(5, 5, 1),
        dtype=jnp.float64,
    )
    params = model.init(jax.random.key(1))
    lam = 0.37
    value, want = jax.value_and_grad(regularization.l2_penalty)(params, lam)
    weights = [p for p in jax.tree.leaves(params) if p.ndim >= 2]
    assert len(weights) == 2  # the conv kernel and the dense matrix
    manual = 0.5 * lam * sum(jnp.sum(w**2) for w in weights)
    assert abs(float(value) - float(manual)) <= 1e-12 * float(manual)
    assert value.dtype == jnp.float64
    zeros = jax.tree.map(jnp.zeros_like, params)
    got = regularization.add_l2_grad(zeros, params, lam)
    assert_trees_rel_close(got, want, rtol=1e-12)
    # added to, not replacing, the data gradient
    ones = jax.tree.map(jnp.ones_like, params)
    summed = regularization.add_l2_grad(ones, params, lam)
    assert_trees_rel_close(summed, jax.tree.map(jnp.add, ones, want), rtol=1e-12)


def test_float32_weights_stay_float32_with_a_float64_strength():
    params = jaxbp.mlp([2, 3]).init(jax.random.key(0))
    assert regularization.l2_penalty(params, jnp.float64(0.5)).dtype == jnp.float32
    grads = regularization.add_l2_grad(params, params, jnp.float64(0.5))
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))
