"""jaxbp.data.synthetic: generated datasets, deterministic per seed."""

import math

import jax
import numpy as np
import pytest
from data_testing import all_splits, unstandardize
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from jaxbp import data
from jaxbp.data import load

SYNTHETIC = data.SYNTHETIC_DATASETS


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_shapes_and_determinism(name):
    ds = load(name, seed=0)
    n, _ = data.SYNTHETIC_DEFAULTS[name]
    sizes = [len(s.y) for s in all_splits(ds)]
    assert sum(sizes) == n
    assert sizes[2] == math.ceil(0.2 * n) and sizes[1] == math.ceil(
        0.1 * (n - sizes[2])
    )
    in_dim = 1 if name == "sine" else 2
    assert ds.in_shape == (in_dim,)
    for split in all_splits(ds):
        assert split.x.dtype == np.float32 and split.x.shape == (len(split.y), in_dim)
        assert np.isfinite(split.x).all()
    if name == "sine":
        assert ds.task == "regression" and ds.num_classes is None
        for split in all_splits(ds):
            assert split.y.dtype == np.float32 and split.y.shape == (len(split.x), 1)
    else:
        assert ds.task == "classification"
        assert ds.num_classes == (3 if name == "blobs" else 2)
        for split in all_splits(ds):
            assert split.y.dtype == np.int32 and split.y.shape == (len(split.x),)
            counts = np.bincount(split.y, minlength=ds.num_classes)
            assert counts.max() - counts.min() <= ds.num_classes  # balanced
    np.testing.assert_allclose(ds.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.train.x.std(axis=0), 1, atol=1e-4)

    again = load(name, seed=0)
    other = load(name, seed=1)
    for a, b, c in zip(
        all_splits(ds), all_splits(again), all_splits(other), strict=True
    ):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert not np.array_equal(a.x, c.x)


def test_synthetic_independent_of_x64():
    with jax.enable_x64(False):
        a = load("spirals", seed=3)
    with jax.enable_x64(True):
        b = load("spirals", seed=3)
    for s, t in zip(all_splits(a), all_splits(b), strict=True):
        np.testing.assert_array_equal(s.x, t.x)
        np.testing.assert_array_equal(s.y, t.y)


def test_synthetic_n_and_noise():
    ds = load("moons", n=101, noise=0.0)
    assert sum(len(s.y) for s in all_splits(ds)) == 101
    # noise=0: circles lie exactly on radius 1 (class 0) and 0.5 (class 1).
    ds = load("circles", n=200, noise=0.0)
    for split in all_splits(ds):
        radius = np.linalg.norm(unstandardize(ds, split.x), axis=1)
        np.testing.assert_allclose(radius, np.where(split.y == 0, 1.0, 0.5), atol=1e-5)
    ds = load("sine", n=200, noise=0.0)
    for split in all_splits(ds):
        x = unstandardize(ds, split.x)
        assert np.all(np.abs(x) <= np.pi + 1e-5)
        np.testing.assert_allclose(split.y, np.sin(x), atol=1e-5)
    noisy = load("sine", n=200, noise=0.3)
    x = unstandardize(noisy, noisy.train.x)
    assert 0.2 < np.std(noisy.train.y - np.sin(x)) < 0.4


def _fit_score(model, ds):
    model.fit(ds.train.x, ds.train.y)
    return model.score(ds.train.x, ds.train.y), model.score(ds.test.x, ds.test.y)


@pytest.mark.parametrize("name", ["spirals", "xor", "circles"])
def test_not_linearly_separable(name):
    ds = load(name)
    train_acc, test_acc = _fit_score(LogisticRegression(), ds)
    assert train_acc < 0.8 and test_acc < 0.8
    # ... but learnable by a non-linear model.
    assert _fit_score(KNeighborsClassifier(5), ds)[1] > 0.9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_blobs_linearly_separable(seed):
    ds = load("blobs", seed=seed)
    assert _fit_score(LogisticRegression(C=100.0, max_iter=1000), ds) == (1.0, 1.0)
