"""The custom_vjp bridge (jax.grad through a model uses its hand-written backward)
and differentiating the manual backward pass itself (Hessian-vector products)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.flatten_util import ravel_pytree

import jaxbp
from jaxbp import layers as L
from jaxbp.bridge import as_jax_function
from jaxbp.layers import Layer


def conv_model(dtype="float64"):
    """A conv net with batch norm and dropout; no conv bias before batch norm
    (as jaxbp.model.cnn: its gradient would be 0, rounding only)."""
    return jaxbp.sequential(
        L.conv2d(3, 3, use_bias=False),
        L.batchnorm(),
        L.activation("tanh"),
        L.max_pool(2),
        L.flatten(),
        L.dropout(0.2),
        L.dense(3),
        in_shape=(5, 5, 2),
        dtype=dtype,
    )


def images(n=4, dtype="float64"):
    return jax.random.normal(jax.random.key(1), (n, 5, 5, 2), dtype)


def l2(params):
    return sum(jnp.sum(p**2) for p in jax.tree.leaves(params))


@pytest.mark.parametrize("train", [False, True])
def test_bridge_gradient_equals_autodiff_inside_a_larger_function(train):
    model = conv_model()
    params, state = model.init_with_state(jax.random.key(0))
    x, key = images(), jax.random.key(2)
    f = as_jax_function(model, state=state, key=key, train=train)

    def plain(p, x):  # the same forward pass, differentiated by JAX
        return model.forward(p, state, x, key=key, train=train)[0]

    def objective(apply):
        def value(p, x):
            return jnp.sum(jnp.sin(apply(p, x)) ** 2) + 1e-2 * l2(p)

        return value

    np.testing.assert_allclose(f(params, x), plain(params, x), rtol=1e-13)
    bridged = jax.jit(jax.grad(objective(f), argnums=(0, 1)))(params, x)
    autodiff = jax.jit(jax.grad(objective(plain), argnums=(0, 1)))(params, x)
    assert_trees_rel_close(bridged, autodiff, 1e-10)


def test_bridge_under_vmap_and_float32():
    model = jaxbp.mlp([3, 5, 2], "tanh")
    params = model.init(jax.random.key(0))
    f = as_jax_function(model)
    xs = jax.random.normal(jax.random.key(1), (6, 4, 3), jnp.float32)

    def per_batch(apply):
        return jax.vmap(jax.grad(lambda p, x: jnp.sum(apply(p, x) ** 3)), (None, 0))

    bridged = jax.jit(per_batch(f))(params, xs)
    autodiff = jax.jit(per_batch(model.apply))(params, xs)
    assert jax.tree.leaves(bridged)[0].dtype == jnp.float32
    assert_trees_rel_close(bridged, autodiff, 1e-5)
    # x's cotangent comes back in x's dtype even when the model's differs
    g64 = jax.grad(lambda x: jnp.sum(f(params, x)))(xs[0].astype(jnp.float64))
    assert g64.dtype == jnp.float64


def doubled_dense(n):
    """A dense layer whose backward pass is deliberately wrong: dW doubled."""
    layer = L.dense(n)

    def backward(params, x, dy):
        grads, dx = layer.backward(params, x, dy)
        return {"w": 2 * grads["w"], "b": grads["b"]}, dx

    return Layer("dense", layer.init, layer.forward, backward)


def test_bridge_really_uses_the_hand_written_backward():
    model = jaxbp.sequential(
        L.dense(4),
        L.activation("tanh"),
        doubled_dense(2),
        in_shape=(3,),
        dtype="float64",
    )
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (5, 3), jnp.float64)
    y = jnp.array([0, 1, 1, 0, 1])
    f = as_jax_function(model)

    def loss_through(apply):
        def value(p):
            logits = apply(p, x)
            return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(5), y])

        return value

    bridged, autodiff, (_, manual) = jax.jit(
        lambda p: (
            jax.grad(loss_through(f))(p),
            jax.grad(loss_through(model.apply))(p),
            jaxbp.loss_and_grad(model, p, x, y, train=False),
        )
    )(params)
    # the wrong rule shows up in the bridged gradient, and only there
    np.testing.assert_allclose(bridged[2]["w"], 2 * autodiff[2]["w"], rtol=1e-12)
    assert_trees_rel_close(bridged, manual, 1e-12)
    assert not jaxbp.check_grads(model, params, x, y, train=False).ok


def test_bridge_errors():
    with pytest.raises(TypeError, match="expected a jaxbp Model"):
        as_jax_function(L.dense(3))
    f = as_jax_function(jaxbp.mlp([3, 2]))
    params = jaxbp.mlp([3, 2]).init(jax.random.key(0))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, 3\)"):
        f(params, jnp.zeros((2, 4)))


# ------------------------------------------------ differentiating the backward pass


def hvp_pair(model, params, x, y, v, *, loss, state=None, key=None):
    """H v two ways: forward mode over the manual gradient, and jax.hessian."""

    def manual_grad(p):
        return jaxbp.loss_and_grad(model, p, x, y, loss=loss, state=state, key=key)[1]

    _, by_jvp = jax.jvp(manual_grad, (params,), (v,))
    flat, unravel = ravel_pytree(params)

    def flat_loss(f):
        return jaxbp.loss(model, unravel(f), x, y, loss=loss, state=state, key=key)

    hessian = jax.hessian(flat_loss)(flat)
    return by_jvp, unravel(hessian @ ravel_pytree(v)[0])


SMOOTH = ("sigmoid", "tanh", "softplus", "gelu", "silu", "identity")


@functools.cache
def smooth_mlp(activation, sizes, loss):
    model = jaxbp.mlp(list(sizes), activation, dtype="float64")

    @jax.jit
    def run(params, x, y, v):
        return hvp_pair(model, params, x, y, v, loss=loss)

    return model, run


@settings(max_examples=3)
@given(
    activation=st.sampled_from(SMOOTH),
    sizes=st.sampled_from([(3, 4, 2), (2, 3, 3, 2)]),
    loss=st.sampled_from(["mse", "cross_entropy"]),
    seed=st.integers(0, 2**16),
)
def test_hessian_vector_product_through_the_manual_backward_mlp(
    activation, sizes, loss, seed
):
    model, run = smooth_mlp(activation, sizes, loss)
    params = model.init(jax.random.key(seed))
    k1, k2, k3 = jax.random.split(jax.random.key(seed + 1), 3)
    x = jax.random.normal(k1, (5, sizes[0]), jnp.float64)
    if loss == "mse":
        y = jax.random.normal(k2, (5, sizes[-1]), jnp.float64)
    else:
        y = jax.random.randint(k2, (5,), 0, sizes[-1])
    flat, unravel = ravel_pytree(params)
    v = unravel(jax.random.normal(k3, flat.shape, jnp.float64))
    by_jvp, by_hessian = run(params, x, y, v)
    assert_trees_rel_close(by_jvp, by_hessian, 1e-9)


def test_hessian_vector_product_through_the_manual_backward_conv_batchnorm():
    model = conv_model()
    params, state = model.init_with_state(jax.random.key(0))
    x, y = images(6), jnp.array([0, 1, 2, 0, 1, 2])
    flat, unravel = ravel_pytree(params)
    v = unravel(jax.random.normal(jax.random.key(3), flat.shape, jnp.float64))
    run = jax.jit(
        lambda p, v: hvp_pair(
            model, p, x, y, v, loss="cross_entropy", state=state, key=jax.random.key(4)
        )
    )
    by_jvp, by_hessian = run(params, v)
    assert_trees_rel_close(by_jvp, by_hessian, 1e-9)
    assert float(jnp.max(jnp.abs(ravel_pytree(by_jvp)[0]))) > 1e-3  # not trivially 0
