"""jaxbp.data.digits: the UCI digits scikit-learn ships, split and standardized."""

import math

import numpy as np
import pytest
from data_testing import all_splits, unstandardize
from sklearn.datasets import load_digits

from jaxbp.data import Dataset, Split, load
from jaxbp.data import digits as digits_module


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def test_digits_shapes_and_dtypes(digits):
    assert isinstance(digits, Dataset)
    assert digits.task == "classification" and digits.num_classes == 10
    assert digits.in_shape == (64,)
    sizes = [len(s.y) for s in all_splits(digits)]
    assert sum(sizes) == 1797
    assert sizes == [1797 - 360 - 144, 144, 360]  # val: ceil(0.1 * 1437)
    for split in all_splits(digits):
        assert isinstance(split, Split)
        assert split.x.dtype == np.float32 and split.y.dtype == np.int32
        assert split.x.shape == (len(split.y), 64)
        assert set(np.unique(split.y)) == set(range(10))
    assert digits.feature_mean.shape == digits.feature_std.shape == (64,)
    assert digits.feature_mean.dtype == digits.feature_std.dtype == np.float32


def test_digits_test_and_val_splits_are_stratified(digits):
    counts = np.bincount(load_digits().target, minlength=10)
    for split, fraction, total in (
        (digits.test, 0.2, 1797),
        (digits.val, 144 / 1437, 1437),
    ):
        got = np.bincount(split.y, minlength=10)
        rest = counts if total == 1797 else counts - np.bincount(digits.test.y)
        share = fraction * rest
        assert np.all(got >= np.floor(share - 1e-9)), (got, share)
        assert np.all(got <= np.ceil(share + 1e-9)), (got, share)


def test_digits_are_scikit_learns_load_digits():
    """Read from the file scikit-learn ships, and through load_digits when the
    file cannot be found: the same arrays either way."""
    raw = load_digits()
    x, y = digits_module.digits_arrays()
    np.testing.assert_array_equal(x, raw.data.astype(np.float32))
    np.testing.assert_array_equal(y, raw.target)
    assert x.dtype == np.float32 and y.dtype == np.int32


def test_digits_fall_back_to_load_digits(monkeypatch):
    monkeypatch.setattr(digits_module.importlib.util, "find_spec", lambda name: None)
    x, y = digits_module.digits_arrays()
    np.testing.assert_array_equal(x, load_digits().data.astype(np.float32))
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (1797, 64)


def test_digits_splits_fixed_across_seeds(digits):
    other = load("digits", seed=7)
    for a, b in zip(all_splits(digits), all_splits(other), strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)


def test_digits_splits_partition_the_data(digits):
    raw = load_digits()
    expected = sorted(
        (tuple(row), int(t)) for row, t in zip(raw.data, raw.target, strict=True)
    )
    got = []
    for split in all_splits(digits):
        rows = np.rint(unstandardize(digits, split.x)).astype(int)
        got += [(tuple(r), int(t)) for r, t in zip(rows, split.y, strict=True)]
    assert sorted(got) == expected


def test_digits_train_is_standardized(digits):
    x = digits.train.x.astype(np.float64)
    constant = np.ptp(x, axis=0) == 0
    assert constant.any()  # digits has always-blank corner pixels
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, ~constant].std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(digits.feature_std[constant], 1)
    np.testing.assert_array_equal(x[:, constant], 0)


def test_digits_val_test_use_train_statistics(digits):
    raw = {
        name: unstandardize(digits, split.x)
        for name, split in zip(("train", "val", "test"), all_splits(digits))
    }
    for values in raw.values():  # the stored pixels come back exactly
        np.testing.assert_allclose(values, np.rint(values), atol=1e-4)
        raw_int = np.rint(values)
        assert raw_int.min() >= 0 and raw_int.max() <= 16
    train = np.rint(raw["train"])
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1
    np.testing.assert_allclose(digits.feature_mean, mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(digits.feature_std, std, rtol=1e-6)
    for name, split in (("val", digits.val), ("test", digits.test)):
        np.testing.assert_allclose(
            split.x, (np.rint(raw[name]) - mean) / std, atol=1e-5
        )
        # ... and not with their own statistics.
        assert np.abs(split.x.mean(axis=0)).max() > 1e-3


def test_digits_images(digits):
    ds = load("digits", images=True)
    assert ds.in_shape == (8, 8, 1)
    assert ds.feature_mean.shape == ds.feature_std.shape == (8, 8, 1)
    for flat, img in zip(all_splits(digits), all_splits(ds), strict=True):
        assert img.x.shape == (len(img.y), 8, 8, 1) and img.x.dtype == np.float32
        np.testing.assert_array_equal(img.x.reshape(len(img.y), 64), flat.x)
        np.testing.assert_array_equal(img.y, flat.y)


def test_digits_n_subsamples_training_only(digits):
    ds = load("digits", n=100, seed=3)
    assert len(ds.train.y) == 100
    assert np.all(np.bincount(ds.train.y, minlength=10) >= 9)
    np.testing.assert_array_equal(
        unstandardize(ds, ds.test.x).round(),
        unstandardize(digits, digits.test.x).round(),
    )
    np.testing.assert_array_equal(ds.val.y, digits.val.y)
    np.testing.assert_allclose(ds.train.x.mean(axis=0), 0, atol=1e-5)
    assert not np.array_equal(load("digits", n=100, seed=4).train.y, ds.train.y)
    with pytest.raises(ValueError, match="only 1293"):
        load("digits", n=1294)


def test_digits_val_fraction():
    ds = load("digits", val_fraction=0.25)
    assert len(ds.val.y) == math.ceil(0.25 * 1437)
    assert len(ds.test.y) == 360
