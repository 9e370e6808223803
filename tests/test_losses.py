"""Losses: values against independent formulas, gradients against jax.grad and
finite differences, stability at huge logits, and target checking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import LOSS_NAMES, make_targets, relative_error
from hypothesis import assume, given
from hypothesis import strategies as st

from jaxbp import losses


def prepared(loss, pred, y):
    fn = losses.get(loss)
    return fn, fn.prepare(pred, jnp.asarray(y))


@st.composite
def loss_problems(draw):
    loss = draw(st.sampled_from(LOSS_NAMES))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    batch = draw(st.integers(1, 8))
    if loss == "binary_cross_entropy":
        n_out = 1
    elif loss == "hinge":
        n_out = draw(st.sampled_from([1, 2, 4]))
    else:
        n_out = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0]))
    rng = np.random.default_rng(seed)
    pred = jnp.asarray(scale * rng.normal(size=(batch, n_out)), dtype)
    y = make_targets(rng, loss, batch, n_out, soft=draw(st.booleans()))
    return loss, pred, y, dtype


@given(loss_problems())
def test_backward_matches_jax_grad_jit_and_vmap(problem):
    loss, pred, y, dtype = problem
    fn, target = prepared(loss, pred, y)
    want = jax.grad(fn.value)(pred, target)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    got = fn.backward(pred, target)
    assert got.dtype == pred.dtype and got.shape == pred.shape
    assert relative_error(got, want) <= rtol
    assert relative_error(jax.jit(fn.backward)(pred, target), want) <= rtol
    # per-example: vmap over the batch, each a batch of one
    per_example = jax.vmap(lambda p, t: fn.backward(p[None], t[None])[0])(pred, target)
    per_example_want = jax.vmap(lambda p, t: jax.grad(fn.value)(p[None], t[None])[0])(
        pred, target
    )
    assert relative_error(per_example, per_example_want) <= rtol


@given(loss_problems())
def test_backward_matches_finite_differences(problem):
    loss, pred, y, _ = problem
    pred = pred.astype(jnp.float64)
    fn, target = prepared(loss, pred, y)
    if loss == "hinge":
        if pred.shape[1] == 1:
            margins = 1 - target * pred
        else:
            margins = jnp.where(
                target > 0, 1.0, losses._multiclass_margins(pred, target)
            )
        assume(float(jnp.min(jnp.abs(margins))) > 1e-3)
    h = 1e-5
    flat = pred.ravel()
    fd = jnp.stack(
        [
            (
                fn.value((flat + h * e).reshape(pred.shape), target)
                - fn.value((flat - h * e).reshape(pred.shape), target)
            )
            / (2 * h)
            for e in jnp.eye(flat.size)
        ]
    ).reshape(pred.shape)
    assert relative_error(fn.backward(pred, target), fd) <= 1e-6


def np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_values_against_independent_formulas():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 4))
    labels = np.array([0, 3, 1, 2, 3, 0])
    target = rng.normal(size=(6, 4))

    mse = losses.get("mse")
    want = np.mean([0.5 * np.sum((z[b] - target[b]) ** 2) for b in range(6)])
    np.testing.assert_allclose(
        mse.value(jnp.asarray(z), jnp.asarray(target)), want, rtol=1e-13
    )

    fn, t = prepared("cross_entropy", jnp.asarray(z), labels)
    want = -np.mean([np_log_softmax(z)[b, labels[b]] for b in range(6)])
    np.testing.assert_allclose(fn.value(jnp.asarray(z), t), want, rtol=1e-13)

    fn, t = prepared("hinge", jnp.asarray(z), labels)
    want = np.mean(
        [
            sum(
                max(0, z[b, j] - z[b, labels[b]] + 1)
                for j in range(4)
                if j != labels[b]
            )
            for b in range(6)
        ]
    )
    np.testing.assert_allclose(fn.value(jnp.asarray(z), t), want, rtol=1e-13)

    f = z[:, :1]
    y01 = np.array([0, 1, 1, 0, 1, 0])
    fn, t = prepared("binary_cross_entropy", jnp.asarray(f), y01)
    p = 1 / (1 + np.exp(-f[:, 0]))
    want = -np.mean(y01 * np.log(p) + (1 - y01) * np.log(1 - p))
    np.testing.assert_allclose(fn.value(jnp.asarray(f), t), want, rtol=1e-12)

    fn, t = prepared("hinge", jnp.asarray(f), y01)
    tpm = 2 * y01 - 1
    want = np.mean(np.maximum(0, 1 - tpm * f[:, 0]))
    np.testing.assert_allclose(fn.value(jnp.asarray(f), t), want, rtol=1e-13)
    # labels already in {-1, +1} mean the same
    fn, t2 = prepared("hinge", jnp.asarray(f), tpm)
    np.testing.assert_array_equal(t, t2)


def test_mse_gradient_definition():
    pred, target = (
        jnp.array([[1.0, 2.0], [3.0, 5.0]]),
        jnp.array([[0.0, 2.0], [1.0, 1.0]]),
    )
    np.testing.assert_allclose(losses.mse_backward(pred, target), (pred - target) / 2)


def test_cross_entropy_soft_and_onehot_labels_agree():
    z = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)))
    labels = jnp.array([0, 2, 1, 1, 0])
    fn, t_int = prepared("cross_entropy", z, labels)
    _, t_hot = prepared("cross_entropy", z, jax.nn.one_hot(labels, 3))
    np.testing.assert_allclose(fn.value(z, t_int), fn.value(z, t_hot))
    np.testing.assert_allclose(fn.backward(z, t_int), fn.backward(z, t_hot))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropies_finite_and_correct_at_huge_logits(dtype):
    z = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [0.0, 0.0, -1e4]], dtype)
    labels = jnp.array([1, 0, 2])
    fn, t = prepared("cross_entropy", z, labels)
    value, grad = fn.value(z, t), fn.backward(z, t)
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad))
    # row 0: lse = 1e4, loss = 2e4; row 1: lse = 1e4 + log 2, loss = 2e4 + log 2;
    # row 2: lse = log 2, loss = log 2 + 1e4
    want = (2e4 + (2e4 + np.log(2)) + (np.log(2) + 1e4)) / 3
    np.testing.assert_allclose(value, want, rtol=1e-6)
    want_grad = np.array([[1, -1, 0], [-1, 0.5, 0.5], [0.5, 0.5, -1]]) / 3
    np.testing.assert_allclose(grad, want_grad, atol=1e-7)
    np.testing.assert_allclose(jax.grad(fn.value)(z, t), want_grad, atol=1e-7)

    f = jnp.array([[1e4], [-1e4], [1e4], [-1e4]], dtype)
    y = jnp.array([0, 1, 1, 0])
    fn, t = prepared("binary_cross_entropy", f, y)
    value, grad = fn.value(f, t), fn.backward(f, t)
    assert jnp.isfinite(value) and jnp.all(jnp.isfinite(grad))
    np.testing.assert_allclose(value, (1e4 + 1e4 + 0 + 0) / 4, rtol=1e-6)
    np.testing.assert_allclose(grad, np.array([[1], [-1], [0], [0]]) / 4, atol=1e-7)


def test_hinge_kink_derivative_is_zero_and_matches_jax_grad():
    f = jnp.array([[1.0], [-1.0]])  # both exactly at margin 1 - t f = 0
    fn, t = prepared("hinge", f, jnp.array([1, 0]))
    np.testing.assert_array_equal(fn.backward(f, t), jnp.zeros((2, 1)))
    np.testing.assert_array_equal(jax.grad(fn.value)(f, t), jnp.zeros((2, 1)))
    z = jnp.array([[0.0, 1.0, -1.0]])  # class 1: margin of class 0 is exactly 0
    fn, t = prepared("hinge", z, jnp.array([1]))
    np.testing.assert_array_equal(fn.backward(z, t), jax.grad(fn.value)(z, t))


def test_errors_name_expected_and_got():
    z = jnp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"unknown loss 'l2'.*mse, cross_entropy"):
        losses.get("l2")
    with pytest.raises(
        ValueError, match=r"integers in \[0, 3\).*got values in \[0, 3\]"
    ):
        prepared("cross_entropy", z, jnp.array([0, 1, 2, 3]))
    with pytest.raises(
        ValueError, match=r"shape \(4,\) or .*\(4, 3\).*got .* shape \(4, 2\)"
    ):
        prepared("cross_entropy", z, jnp.zeros((4, 2)))
    with pytest.raises(
        ValueError, match=r"3 outputs must have .* \(4, 3\); got shape \(4,\)"
    ):
        prepared("binary_cross_entropy", z, jnp.zeros(4))
    with pytest.raises(ValueError, match=r"in \{0, 1\}"):
        prepared("binary_cross_entropy", jnp.zeros((4, 1)), jnp.array([0, 1, 2, 1]))
    with pytest.raises(
        ValueError, match=r"mse targets must have .* \(4, 3\); got shape \(4, 2\)"
    ):
        prepared("mse", z, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"hinge labels for one output"):
        prepared("hinge", jnp.zeros((4, 1)), jnp.array([0, 1, 2, 1]))
