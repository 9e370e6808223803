"""check_grads: passes on correct backward passes, catches wrong ones, prints a table."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.layers import Layer, activation, batchnorm, dense, serial


@pytest.fixture
def problem():
    x = jax.random.normal(jax.random.key(1), (8, 3))
    y = jnp.array([0, 1, 2, 0, 1, 2, 0, 1])
    return x, y


def test_report_passes_and_prints_a_table(problem):
    model = jaxbp.mlp([3, 6, 3], "sigmoid")
    params = model.init(jax.random.key(0))
    report = jaxbp.check_grads(model, params, *problem, finite_differences=True)
    assert report.ok
    text = str(report)
    for header in (
        "parameter",
        "max|manual-autodiff|",
        "rel err",
        "max|manual-fd|",
        "ok",
    ):
        assert header in text
    assert "0.dense/w" in text and "2.dense/b" in text
    assert "all gradients agree" in text
    assert [leaf.path for leaf in report.leaves] == [
        "0.dense/b",
        "0.dense/w",
        "2.dense/b",
        "2.dense/w",
    ]
    assert report.max_fd_rel < 1e-8


def buggy_dense(out, *, name="buggy_dense", w_factor=1.0, b_factor=0.5):
    """A dense layer whose backward is wrong: dW and db scaled by the factors."""
    good = dense(out)

    def backward(params, x, dy):
        grads, dx = good.backward(params, x, dy)
        return {"w": w_factor * grads["w"], "b": b_factor * grads["b"]}, dx

    return Layer(name, good.init, good.forward, backward)


def test_catches_a_wrong_backward_rule(problem):
    model = jaxbp.sequential(
        buggy_dense(4), jaxbp.layers.activation("tanh"), dense(3), in_shape=(3,)
    )
    params = model.init(jax.random.key(0))
    report = jaxbp.check_grads(model, params, *problem, finite_differences=True)
    assert not report.ok
    failing = [leaf.path for leaf in report.leaves if not leaf.ok]
    assert failing == ["0.buggy_dense/b"]
    assert "FAIL" in str(report) and "GRADIENT MISMATCH" in str(report)


def test_float32_model_checked_in_float32_and_float64(problem):
    model = jaxbp.mlp([3, 5, 3], "gelu", dtype="float32")
    params = model.init(jax.random.key(0))
    report = jaxbp.check_grads(model, params, *problem, finite_differences=True)
    assert report.dtype == "float32" and report.autodiff_rtol == 1e-5
    assert report.ok, str(report)


def test_nested_serial_paths(problem):
    block = serial(dense(4), jaxbp.layers.activation("relu"), name="block")
    model = jaxbp.sequential(block, dense(3), in_shape=(3,))
    params = model.init(jax.random.key(0))
    report = jaxbp.check_grads(model, params, *problem)
    assert report.ok
    assert "0.block/0/w" in [leaf.path for leaf in report.leaves]


#: A deep sigmoid MLP: its first layer's gradients are about 1000 times smaller
#: than its last's (the vanishing gradient).
DEEP_SIGMOID = [64, 30, 30, 30, 30, 30, 10]


@pytest.fixture
def deep_problem():
    x = jax.random.normal(jax.random.key(1), (32, 64))
    return x, jnp.arange(32) % 10


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_wrong_rule_in_a_leaf_far_smaller_than_the_largest_is_caught(
    deep_problem, dtype
):
    """Each leaf is judged on its own scale: a first-layer dW 0.5% off fails,
    although in float32 its error is within rtol x the model's largest
    gradient (the allowance that used to let it pass)."""
    x, y = deep_problem[0].astype(dtype), deep_problem[1]
    plain = jaxbp.mlp(DEEP_SIGMOID, "sigmoid", dtype=dtype)
    params = plain.init(jax.random.key(0))
    assert jaxbp.check_grads(plain, params, x, y).ok

    wrong_first = buggy_dense(30, name="dense", w_factor=1.005, b_factor=1.0)
    model = jaxbp.sequential(
        wrong_first, *plain.layers[1:], in_shape=(64,), dtype=dtype
    )
    report = jaxbp.check_grads(model, params, x, y)
    assert not report.ok
    assert [leaf.path for leaf in report.leaves if not leaf.ok] == ["0.dense/w"]

    _, grads = jaxbp.loss_and_grad(plain, params, x, y, backprop="autodiff")
    largest = max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads))
    first = float(jnp.max(jnp.abs(grads[0]["w"])))
    assert largest > 100 * first
    if dtype == "float32":
        wrong = report.leaves[1]
        assert wrong.autodiff_max_abs <= report.autodiff_rtol * largest
        assert wrong.float64_rel > 1e-3  # the float64 check sees the 0.5%


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cancelling_bias_passes_on_the_scale_of_its_terms(problem, dtype):
    """A dense bias right before batch norm: its true gradient is exactly 0
    (the mean subtraction removes it), so both passes return rounding of its
    terms; it passes on its own term scale, marked ok*."""
    model = jaxbp.sequential(
        dense(4), batchnorm(), activation("tanh"), dense(3), in_shape=(3,), dtype=dtype
    )
    params, state = model.init_with_state(jax.random.key(0))
    x, y = problem[0].astype(dtype), problem[1]
    report = jaxbp.check_grads(model, params, x, y, state=state)
    assert report.ok, str(report)
    bias = report.leaves[0]
    assert bias.path == "0.dense/b"
    assert not bias.relative_ok and "ok*" in str(report)
    _, grads = jaxbp.loss_and_grad(model, params, x, y, state=state)
    assert bias.term_scale > 1e5 * float(jnp.max(jnp.abs(grads[0]["b"])))
    assert all(leaf.relative_ok for leaf in report.leaves[1:])


def test_term_scale_is_float32_rounding_of_autodiff_in_units_of_eps():
    exact = np.array([1.0, -2.0, 3.0])
    rounded = exact + np.array([0.0, 4e-7, -2e-7])
    scale = jaxbp.gradcheck.term_scale(rounded, exact)
    np.testing.assert_allclose(scale, 4e-7 / np.finfo(np.float32).eps)
    assert jaxbp.gradcheck.term_scale(exact, exact) == 0.0
    # within_rounding: relative to the leaf's own scale, or to its term scale
    assert jaxbp.gradcheck.within_rounding(exact, exact * (1 + 1e-6), 1e-5)
    assert not jaxbp.gradcheck.within_rounding(exact, exact * 1.01, 1e-5)
    assert jaxbp.gradcheck.within_rounding(exact, exact * 1.01, 1e-5, 1e4)
    assert not jaxbp.gradcheck.within_rounding(exact, exact * np.inf, 1e-5, 1e4)
