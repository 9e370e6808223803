"""check_grads: passes on correct backward passes, catches wrong ones, prints a table."""

import jax
import jax.numpy as jnp
import pytest

import jaxbp
from jaxbp.layers import Layer, dense, serial


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


def buggy_dense(out):
    """A dense layer whose backward forgets to transpose... no: drops the bias gradient scale."""
    good = dense(out)

    def backward(params, x, dy):
        grads, dx = good.backward(params, x, dy)
        return {"w": grads["w"], "b": 0.5 * grads["b"]}, dx

    return Layer("buggy_dense", good.init, good.forward, backward)


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
