"""The hand-written backward pass of whole models against jax.grad and finite differences."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    RTOL,
    as_float64,
    assert_trees_rel_close,
    distance_to_kinks,
    mlp_problems,
)
from hypothesis import assume, example, given, settings

import jaxbp


def build(problem):
    model = jaxbp.mlp(problem["sizes"], problem["activation"], dtype=problem["dtype"])
    params = model.init(jax.random.key(problem["seed"] % 1000))
    return model, params


def float64_gradients(problem, params, x=None, y=None):
    """jax.grad of the same problem (same parameters) in float64: the yardstick
    when float32 manual and autodiff gradients differ by rounding."""
    model = jaxbp.mlp(problem["sizes"], problem["activation"], dtype="float64")

    def gradients(p, x, y):
        return jaxbp.loss_and_grad(
            model, p, x, y, loss=problem["loss"], backprop="autodiff"
        )[1]

    x = problem["x"] if x is None else x
    y = problem["y"] if y is None else y
    # jitted: one compilation instead of one per operation for each new shape
    return jax.jit(gradients)(*as_float64((params, x, y)))


@settings(
    max_examples=15
)  # eager: every new shape compiles each op; jit tests draw more
@given(problem=mlp_problems(max_depth=2))
def test_manual_equals_autodiff_eagerly(problem):
    model, params = build(problem)
    x, y, loss = problem["x"], problem["y"], problem["loss"]
    value, grads = jaxbp.loss_and_grad(model, params, x, y, loss=loss)
    value_ad, grads_ad = jaxbp.loss_and_grad(
        model, params, x, y, loss=loss, backprop="autodiff"
    )
    chex.assert_trees_all_equal_shapes_and_dtypes(grads, params)
    chex.assert_type(jax.tree.leaves(grads), jnp.dtype(problem["dtype"]))
    np.testing.assert_allclose(value, value_ad, rtol=RTOL[problem["dtype"]])
    np.testing.assert_allclose(
        value, jaxbp.loss(model, params, x, y, loss=loss), rtol=1e-6
    )
    reference = float64_gradients(problem, params)
    assert_trees_rel_close(grads, grads_ad, RTOL[problem["dtype"]], reference)


@given(mlp_problems(dtypes=("float64",)))
def test_manual_equals_finite_differences(problem):
    model, params = build(problem)
    assume(
        distance_to_kinks(model, params, problem["x"], problem["y"], problem["loss"])
        > 1e-3
    )
    report = jaxbp.check_grads(
        model,
        params,
        problem["x"],
        problem["y"],
        loss=problem["loss"],
        finite_differences=True,
    )
    assert report.ok, str(report)


#: float32, logit ≈ 6.6 with label 1: σ(z) ≈ y, where jax.grad of
#: log(1 + e^z) − y z loses digits the manual σ(z) − y keeps (found by hypothesis)
SIGMOID_SATURATED = {
    "sizes": [4, 1, 3, 1, 1],
    "activation": "relu",
    "loss": "binary_cross_entropy",
    "x": np.array([[1.5773268, 0.90727407, -0.69901854, 1.0552714]], np.float32),
    "y": np.array([1.0], np.float32),
    "seed": 22932,
    "dtype": "float32",
}


@given(mlp_problems())
@example(problem=SIGMOID_SATURATED)
def test_manual_under_jit(problem):
    model, params = build(problem)
    loss = problem["loss"]
    manual = jax.jit(lambda p, x, y: jaxbp.loss_and_grad(model, p, x, y, loss=loss))
    autodiff = jax.jit(
        lambda p, x, y: jaxbp.loss_and_grad(
            model, p, x, y, loss=loss, backprop="autodiff"
        )
    )
    (v, g), (v_ad, g_ad) = (
        manual(params, problem["x"], problem["y"]),
        autodiff(params, problem["x"], problem["y"]),
    )
    np.testing.assert_allclose(v, v_ad, rtol=RTOL[problem["dtype"]])
    reference = float64_gradients(problem, params)
    assert_trees_rel_close(g, g_ad, RTOL[problem["dtype"]], reference)


@given(mlp_problems())
def test_per_example_gradients_under_vmap(problem):
    model, params = build(problem)
    loss, x, y = problem["loss"], problem["x"], problem["y"]

    def per_example(backprop):
        def one(xi, yi):
            return jaxbp.loss_and_grad(
                model, params, xi[None], yi[None], loss=loss, backprop=backprop
            )

        return jax.jit(jax.vmap(one))(x, y)

    (values, grads), (values_ad, grads_ad) = (
        per_example("manual"),
        per_example("autodiff"),
    )
    rtol = RTOL[problem["dtype"]]
    np.testing.assert_allclose(values, values_ad, rtol=rtol)
    reference = jax.jit(
        jax.vmap(lambda xi, yi: float64_gradients(problem, params, xi[None], yi[None]))
    )(x, y)
    assert_trees_rel_close(grads, grads_ad, rtol, reference)
    # every loss is a batch mean, so the batch gradient is the mean of per-example ones
    _, batch_grads = jaxbp.loss_and_grad(model, params, x, y, loss=loss)
    assert_trees_rel_close(
        jax.tree.map(lambda g: g.mean(axis=0), grads),
        batch_grads,
        100 * rtol,
        float64_gradients(problem, params),
    )


# no_differentiation: the fixture in conftest.py


@pytest.mark.parametrize("activation", jaxbp.activations.ACTIVATIONS)
@pytest.mark.parametrize("loss", jaxbp.losses.LOSSES)
def test_manual_path_calls_no_jax_differentiation(no_differentiation, activation, loss):
    out = 1 if loss == "binary_cross_entropy" else 3
    model = jaxbp.mlp([4, 5, 5, out], activation)
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 4))
    y = jnp.array([0, 1, 1, 0, 1, 0]) if out == 1 else jnp.array([0, 1, 2, 1, 0, 2])
    if loss == "mse":
        y = jnp.ones((6, out))
    jaxbp.loss_and_grad(model, params, x, y, loss=loss)  # eager
    jax.jit(lambda p: jaxbp.loss_and_grad(model, p, x, y, loss=loss))(params)
    jax.vmap(
        lambda xi, yi: jaxbp.loss_and_grad(model, params, xi[None], yi[None], loss=loss)
    )(x, y)
    # the fixture really does catch differentiation:
    with pytest.raises(AssertionError, match="jax differentiation called"):
        jaxbp.loss_and_grad(model, params, x, y, loss=loss, backprop="autodiff")


def test_contract_example():
    model = jaxbp.mlp([64, 128, 10], activation="relu", init="he")
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (32, 64))
    y = jax.random.randint(jax.random.key(2), (32,), 0, 10)
    out = model.apply(params, x)
    assert out.shape == (32, 10)
    value = jaxbp.loss(model, params, x, y, loss="cross_entropy")
    value_m, grads = jaxbp.loss_and_grad(model, params, x, y, loss="cross_entropy")
    _value_a, grads_a = jaxbp.loss_and_grad(
        model, params, x, y, loss="cross_entropy", backprop="autodiff"
    )
    chex.assert_trees_all_equal_shapes_and_dtypes(grads, params)
    np.testing.assert_allclose(value, value_m, rtol=1e-6)
    assert_trees_rel_close(grads, grads_a, 1e-5)
    report = jaxbp.check_grads(model, params, x, y, loss="cross_entropy")
    assert report.ok and "0.dense/w" in str(report)


@pytest.fixture
def small():
    model = jaxbp.mlp([3, 4, 2], "tanh")
    return model, model.init(jax.random.key(0))


def test_bad_input_errors(small):
    model, params = small
    x, y = jnp.zeros((5, 3)), jnp.array([0, 1, 0, 1, 1])
    with pytest.raises(
        ValueError, match=r"expects inputs of shape \(batch, 3\); got shape \(5, 4\)"
    ):
        jaxbp.loss(model, params, jnp.zeros((5, 4)), y)
    with pytest.raises(
        ValueError, match=r"same number of examples; x has 5, y has shape \(4,\)"
    ):
        jaxbp.loss_and_grad(model, params, x, y[:4])
    with pytest.raises(
        ValueError, match=r"integers in \[0, 2\).*got values in \[0, 7\]"
    ):
        jaxbp.loss_and_grad(model, params, x, jnp.array([0, 1, 7, 1, 1]))
    with pytest.raises(
        ValueError, match=r"labels must be integer classes of shape \(5,\)"
    ):
        jaxbp.loss_and_grad(model, params, x, jnp.zeros((5, 3)))
    with pytest.raises(
        ValueError, match=r"unknown loss 'xent'; expected one of: mse, cross_entropy"
    ):
        jaxbp.loss(model, params, x, y, loss="xent")
    with pytest.raises(
        ValueError,
        match=r"unknown backprop 'numeric'; expected one of: manual, autodiff",
    ):
        jaxbp.loss_and_grad(model, params, x, y, backprop="numeric")
    with pytest.raises(ValueError, match=r"unknown activation 'rectifier'.*relu"):
        jaxbp.mlp([3, 2], activation="rectifier")
    with pytest.raises(ValueError, match=r"positive integers; got \[3, 0, 2\]"):
        jaxbp.mlp([3, 0, 2])


def test_label_range_is_not_checked_under_jit(small):
    model, params = small
    x = jnp.zeros((2, 3))
    # values are unknown while tracing: no error, and no crash
    value = jax.jit(lambda y: jaxbp.loss(model, params, x, y))(jnp.array([0, 1]))
    assert jnp.isfinite(value)
