"""jaxbp.data.load's argument checks and jaxbp.data.splits: standardize,
check_finite, the stratified holdout."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxbp import data
from jaxbp.data import check_finite, load, standardize
from jaxbp.data.splits import stratified_holdout


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as info:
        load("cifar10")
    for name in data.DATASETS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"val_fraction": True}, "val_fraction"),
        ({"n": 0}, "n must be"),
        ({"n": -5}, "n must be"),
        ({"n": 2.5}, "n must be"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
        ({"images": True}, "images=True"),
        ({"n": 2}, "cannot hold out"),
    ],
)
def test_load_validates_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        load("moons", **kwargs)


def test_noise_rejected_for_real_datasets():
    with pytest.raises(ValueError, match="noise applies only"):
        load("digits", noise=0.1)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite(bad):
    x = np.ones((3, 4), np.float32)
    check_finite(x, "fine")  # no error
    check_finite(np.arange(5), "integers")
    x[1, 2] = bad
    with pytest.raises(ValueError, match="my features contains NaN or infinite values"):
        check_finite(x, "my features")


def test_standardize_rejects_non_finite():
    good = np.ones((4, 2), np.float32)
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        standardize(bad, good)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        standardize(good + np.arange(4)[:, None], good, bad)


def test_standardize():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, (100, 3)).astype(np.float32)
    train[:, 1] = 5.0  # constant feature
    other = rng.normal(0.0, 1.0, (10, 3)).astype(np.float32)
    mean, std, (z_train, z_other) = standardize(train, other)
    assert mean.dtype == std.dtype == z_train.dtype == z_other.dtype == np.float32
    assert mean.shape == std.shape == (3,)
    assert std[1] == 1.0 and mean[1] == 5.0
    np.testing.assert_array_equal(z_train[:, 1], 0)
    expected_std = train.astype(np.float64).std(axis=0)
    expected_std[1] = 1
    np.testing.assert_allclose(std, expected_std, rtol=1e-6)
    np.testing.assert_allclose(z_other, (other - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(z_train.mean(axis=0), 0, atol=1e-6)
    with pytest.raises(ValueError, match="feature shape"):
        standardize(train, other[:, :2])
    with pytest.raises(ValueError, match="empty"):
        standardize(train[:0])


def test_standardize_image_shaped():
    x = np.random.default_rng(1).random((20, 4, 4, 1)).astype(np.float32)
    mean, std, (z,) = standardize(x)
    assert mean.shape == std.shape == (4, 4, 1) and z.shape == x.shape
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-5)


def test_standardize_in_place_writes_the_same_values_over_its_inputs():
    rng = np.random.default_rng(2)
    train = rng.normal(3.0, 2.0, (50, 4)).astype(np.float32)
    other = rng.normal(0.0, 1.0, (7, 4)).astype(np.float32)
    mean, std, (z_train, z_other) = standardize(train, other)
    got_mean, got_std, (w_train, w_other) = standardize(train, other, in_place=True)
    assert w_train is train and w_other is other  # overwritten, not copied
    for got, want in [(got_mean, mean), (got_std, std), (train, z_train)]:
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(other, z_other)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda x: x.astype(np.float64), "float64"),
        (
            lambda x: np.frombuffer(x.tobytes(), np.float32).reshape(x.shape),
            "read-only",
        ),
    ],
)
def test_standardize_in_place_needs_writable_float32(make, fragment):
    x = np.ones((5, 2), np.float32)
    with pytest.raises(ValueError, match=f"array 1 passed to standardize.*{fragment}"):
        standardize(x.copy(), make(x), in_place=True)


@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_holdout_counts(counts, fraction, seed):
    strata = np.repeat(np.arange(len(counts)), counts)
    n = len(strata)
    n_held = min(max(1, math.ceil(fraction * n)), n)
    kept, held = stratified_holdout(strata, n_held, np.random.default_rng(seed))
    assert len(held) == n_held
    assert sorted(np.concatenate([kept, held])) == list(range(n))
    got = np.bincount(strata[held], minlength=len(counts))
    share = n_held * np.asarray(counts) / n
    assert np.all(got >= np.floor(share - 1e-9)) and np.all(
        got <= np.ceil(share + 1e-9)
    )
