"""check_grads: passes on correct backward passes, catches wrong ones, prints a table."""

import functools

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


def one_wrong_entry_dense(out, entry, error):
    """A dense layer whose backward is wrong in one weight entry only."""
    good = dense(out)

    def backward(params, x, dy):
        grads, dx = good.backward(params, x, dy)
        return {**grads, "w": grads["w"].at[entry].add(error)}, dx

    return Layer("dense", good.init, good.forward, backward)


@pytest.fixture
def one_wrong_entry():
    """(model, params, x, y, flat index of the wrong entry in leaf 1 = 0.dense/w)."""
    entry = (7, 5)
    model = jaxbp.sequential(
        one_wrong_entry_dense(8, entry, 1e-3),
        activation("tanh"),
        dense(3),
        in_shape=(10,),
        dtype="float64",
    )
    params = model.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (8, 10), jnp.float64)
    y = jnp.arange(8) % 3
    return model, params, x, y, int(np.ravel_multi_index(entry, (10, 8)))


def seeds_that(params, k, wrong, includes):
    """Seeds whose sample of k coordinates of leaf 1 holds (or misses) ``wrong``."""
    return [
        s
        for s in range(200)
        if (wrong in jaxbp.gradcheck.sample_coordinates(params, k, s)[1]) == includes
    ]


def test_finite_differences_catch_one_wrong_entry_when_sampled(one_wrong_entry):
    """All coordinates, or a sample holding the wrong entry, see it against
    finite differences; a sample that misses it does not (documented), while
    autodiff, compared on every coordinate, always does."""
    model, params, x, y, wrong = one_wrong_entry
    check = functools.partial(jaxbp.check_grads, model, params, x, y)
    full = check(finite_differences=True)
    w = full.leaves[1]
    assert w.path == "0.dense/w" and w.fd_coordinates == 80
    assert w.fd_rel > full.fd_rtol and w.fd_max_abs == pytest.approx(1e-3, rel=1e-3)
    assert [leaf.path for leaf in full.leaves if not leaf.ok] == ["0.dense/w"]

    hit = check(
        finite_differences=True,
        fd_samples=4,
        fd_seed=seeds_that(params, 4, wrong, True)[0],
    )
    assert hit.leaves[1].fd_coordinates == 4
    assert hit.leaves[1].fd_max_abs == pytest.approx(1e-3, rel=1e-3)

    miss = check(
        finite_differences=True,
        fd_samples=4,
        fd_seed=seeds_that(params, 4, wrong, False)[0],
    )
    assert miss.leaves[1].fd_rel <= miss.fd_rtol  # sampling missed it
    assert not miss.ok and miss.leaves[1].autodiff_rel > 1e-6  # autodiff did not


def test_sample_coordinates_per_leaf():
    params = {"a": jnp.zeros((10, 8)), "b": jnp.zeros(5), "c": jnp.zeros((0, 3))}
    a, b, c = jaxbp.gradcheck.sample_coordinates(params, 6, fd_seed=3)
    assert len(a) == 6 and len(set(a.tolist())) == 6 and list(a) == sorted(a)
    assert 0 <= a.min() and a.max() < 80
    np.testing.assert_array_equal(b, np.arange(5))  # a small leaf: every coordinate
    assert c.size == 0
    again = jaxbp.gradcheck.sample_coordinates(params, 6, fd_seed=3)
    np.testing.assert_array_equal(again[0], a)
    other = jaxbp.gradcheck.sample_coordinates(params, 6, fd_seed=4)
    assert not np.array_equal(other[0], a)
    full = jaxbp.gradcheck.sample_coordinates(params, None)
    np.testing.assert_array_equal(full[0], np.arange(80))


def test_chunked_loss_differences_equal_the_full_ones(one_wrong_entry, monkeypatch):
    """Chunks (the last one padded) give the same values as ``finite_difference_grads``."""
    model, params, x, y, _ = one_wrong_entry
    monkeypatch.setattr(jaxbp.finite_differences, "FD_CHUNK", 7)
    seen = []
    report = jaxbp.check_grads(
        model,
        params,
        x,
        y,
        finite_differences=True,
        progress=lambda *args: seen.append(args),
    )
    assert seen == [
        (i + 1, 4, leaf.path, int(np.prod(leaf.shape)))
        for i, leaf in enumerate(report.leaves)
    ]

    def value(p):
        return jaxbp.loss(model, p, x, y)

    with jax.enable_x64(True):
        tree = jaxbp.gradcheck.finite_difference_grads(value, params)
        loss_fn = jaxbp.losses.get("cross_entropy")
        coordinates = jaxbp.gradcheck.sample_coordinates(params, None)
        data = jaxbp.backprop.prepare(model, params, x, y, "cross_entropy", None)
        chunked = jaxbp.finite_differences.loss_finite_differences(
            model,
            loss_fn,
            (params, data[3], data[0], data[1]),
            coordinates,
            key=None,
            train=True,
        )
    for expected, got in zip(jax.tree.leaves(tree), chunked):
        np.testing.assert_allclose(got, np.ravel(expected), rtol=1e-9, atol=1e-12)


def test_report_prints_the_sample_size_and_seed(problem):
    model = jaxbp.mlp([3, 6, 3], "tanh")
    params = model.init(jax.random.key(0))
    text = str(
        jaxbp.check_grads(
            model, params, *problem, finite_differences=True, fd_samples=5, fd_seed=9
        )
    )
    assert "a random sample of 5 coordinates per leaf, seed 9" in text
    assert "fd coords" in text and "5/18" in text and "3/3" in text
    text = str(jaxbp.check_grads(model, params, *problem, finite_differences=True))
    assert "every coordinate" in text and "18/18" in text


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"fd_samples": 0}, "fd_samples"),
        ({"fd_samples": 2.5}, "fd_samples"),
        ({"fd_seed": -1}, "fd_seed"),
        ({"fd_seed": "0"}, "fd_seed"),
    ],
)
def test_bad_sampling_arguments_raise(problem, kwargs, name):
    model = jaxbp.mlp([3, 4, 3], "tanh")
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match=name):
        jaxbp.check_grads(model, params, *problem, finite_differences=True, **kwargs)
