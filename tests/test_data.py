"""Tests for jaxbp.data: digits, MNIST-format IDX files, synthetic datasets."""

import gzip
import math
import time

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from jaxbp import data
from jaxbp.data import Dataset, Split, check_finite, load, read_idx, standardize

# --------------------------------------------------------------------------
# Helpers


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Encode ``array`` as an IDX file (big-endian); ``magic`` overrides."""
    codes = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
    code = codes[array.dtype.str[1:]]
    if magic is None:
        magic = (code << 8) | array.ndim
    dims = np.asarray(array.shape, ">u4").tobytes()
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    return magic.to_bytes(4, "big") + dims + body


def write(path, payload: bytes):
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def make_mnist(directory, *, n_train=50, n_test=20, gz=False, seed=0):
    """Write a small valid MNIST-format dataset; return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.uint8) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    suffix = ".gz" if gz else ""
    for key, array in arrays.items():
        write(directory / (data.MNIST_FILES[key] + suffix), idx_bytes(array))
    return arrays


def all_splits(ds: Dataset):
    return ds.train, ds.val, ds.test


def unstandardize(ds: Dataset, x):
    return x.astype(np.float64) * ds.feature_std + ds.feature_mean


# --------------------------------------------------------------------------
# digits


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
    x, y = data._digits_arrays()
    np.testing.assert_array_equal(x, raw.data.astype(np.float32))
    np.testing.assert_array_equal(y, raw.target)
    assert x.dtype == np.float32 and y.dtype == np.int32


def test_digits_fall_back_to_load_digits(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    x, y = data._digits_arrays()
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


# --------------------------------------------------------------------------
# IDX / MNIST


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_loads_valid_files(tmp_path, gz, name):
    arrays = make_mnist(tmp_path, gz=gz)
    ds = load(name, data_dir=tmp_path)
    assert ds.name == name and ds.num_classes == 10 and ds.in_shape == (784,)
    assert [len(s.y) for s in all_splits(ds)] == [45, 5, 20]
    for split in all_splits(ds):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int32
    # The test split is the t10k files, in order; pixels were scaled by 1/255.
    np.testing.assert_array_equal(ds.test.y, arrays["test_labels"])
    np.testing.assert_allclose(
        unstandardize(ds, ds.test.x),
        arrays["test_images"].reshape(20, 784) / 255.0,
        atol=1e-5,
    )
    # Train and val together are the training files.
    train_val = np.concatenate([ds.train.y, ds.val.y])
    assert sorted(train_val) == sorted(arrays["train_labels"])
    np.testing.assert_allclose(ds.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(ds.train.x.std(axis=0), 1, atol=1e-4)


def test_mnist_images_and_mixed_compression(tmp_path):
    arrays = make_mnist(tmp_path)
    # Replace one file by its gzipped version: each file may be either.
    plain = tmp_path / data.MNIST_FILES["test_images"]
    write(tmp_path / (plain.name + ".gz"), plain.read_bytes())
    plain.unlink()
    ds = load("mnist", data_dir=str(tmp_path), images=True)
    assert ds.in_shape == (28, 28, 1)
    assert ds.test.x.shape == (20, 28, 28, 1)
    assert ds.train.x.shape == (45, 28, 28, 1)
    assert ds.feature_mean.shape == (28, 28, 1)
    np.testing.assert_allclose(
        unstandardize(ds, ds.test.x)[..., 0], arrays["test_images"] / 255.0, atol=1e-5
    )


def test_mnist_val_split_fixed_and_n(tmp_path):
    make_mnist(tmp_path, n_train=200)
    a, b = load("mnist", data_dir=tmp_path), load("mnist", data_dir=tmp_path, seed=5)
    np.testing.assert_array_equal(a.val.x, b.val.x)
    np.testing.assert_array_equal(np.bincount(a.val.y), [2] * 10)  # stratified
    small = load("mnist", data_dir=tmp_path, n=30)
    assert len(small.train.y) == 30 and len(small.test.y) == 20


def test_read_idx_roundtrip_other_types(tmp_path):
    for array in (
        np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
        np.linspace(-1, 1, 10).reshape(2, 5),
        np.arange(-3, 3, dtype=np.int16),
        np.zeros((0, 4), np.uint8),
    ):
        for suffix in ("", ".gz"):
            path = write(tmp_path / f"a{array.dtype}{suffix}", idx_bytes(array))
            out = read_idx(path)
            assert out.dtype == array.dtype.newbyteorder("=")
            np.testing.assert_array_equal(out, array)


# Each corruption: (file key, function making the bad bytes from the good ones,
# fragment expected in the message).  Messages must also name the path.
def _truncate(b):
    return b[:-7]


def _overlong(b):
    return b + b"\0\0\0"


def _label_11(b):
    return b[:-1] + bytes([11])


def _magic(value):
    return lambda b: value.to_bytes(4, "big") + b[4:]


def _fewer_labels(b):
    labels = np.frombuffer(b[8:], np.uint8)[:-1]
    return idx_bytes(labels.copy())


def _small_images(b):
    return idx_bytes(np.zeros((50, 20, 20), np.uint8))


CORRUPTIONS = {
    "truncated images": ("train_images", _truncate, "truncated"),
    "truncated header": ("train_images", lambda b: b[:10], "truncated header"),
    "empty file": ("train_images", lambda b: b"", "only 0 bytes"),
    "over-long images": ("train_images", _overlong, "too long"),
    "over-long labels": ("test_labels", _overlong, "too long"),
    "labels magic for images": ("train_images", _magic(0x801), "0x00000803"),
    "images magic for labels": ("train_labels", _magic(0x803), "0x00000801"),
    "int32 labels": ("test_labels", _magic(0xC01), "0x00000801"),
    "not idx": ("train_images", _magic(0x12340803), "not an IDX file"),
    "label count": ("train_labels", _fewer_labels, "expected 50 labels"),
    "label 11": ("train_labels", _label_11, "found 11"),
    "image size": ("train_images", _small_images, "expected 28x28"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_mnist_corrupt_files_raise(tmp_path, case, gz):
    make_mnist(tmp_path, gz=gz)
    key, corrupt, fragment = CORRUPTIONS[case]
    path = tmp_path / (data.MNIST_FILES[key] + (".gz" if gz else ""))
    good = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    write(path, corrupt(good))
    with pytest.raises(ValueError) as info:
        load("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(path) in message and fragment in message, message


def test_idx_error_messages_say_expected_and_found(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / data.MNIST_FILES["train_images"]
    write(path, path.read_bytes()[:-7])
    with pytest.raises(ValueError) as info:
        load("mnist", data_dir=tmp_path)
    n = 16 + 50 * 28 * 28
    assert f"expected 16-byte header + 50 x 28 x 28 uint8 = {n} bytes" in str(
        info.value
    )
    assert f"found {n - 7} bytes" in str(info.value)


def _flip_middle(z):
    mid = len(z) // 2
    return z[:mid] + bytes(b ^ 0xFF for b in z[mid : mid + 20]) + z[mid + 20 :]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda z: z[:-12],  # stream cut short
        _flip_middle,  # damaged data: caught by the CRC check
        lambda z: z[:-8] + bytes(4) + z[-4:],  # CRC mismatch
        lambda z: b"this is not gzip data at all",
        lambda z: z + b"trailing garbage",
    ],
    ids=["cut", "flipped", "crc", "not-gzip", "trailing"],
)
def test_corrupt_gzip_raises(tmp_path, corrupt):
    make_mnist(tmp_path, gz=True)
    path = tmp_path / (data.MNIST_FILES["train_images"] + ".gz")
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError) as info:
        load("mnist", data_dir=tmp_path)
    assert str(path) in str(info.value)


def test_plain_file_holding_gzip_gives_hint(tmp_path):
    path = tmp_path / "x-idx1-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(3, np.uint8))))
    with pytest.raises(ValueError, match="gzip-compressed"):
        read_idx(path)


def test_huge_header_fails_fast(tmp_path):
    # Header announces 2**32-1 x 2**32-1 x 28 bytes; the file is tiny.
    header = (0x803).to_bytes(4, "big") + np.array(
        [2**32 - 1, 2**32 - 1, 28], ">u4"
    ).tobytes()
    for suffix in ("", ".gz"):
        path = write(tmp_path / f"huge{suffix}", header + bytes(100))
        start = time.perf_counter()
        with pytest.raises(ValueError) as info:
            read_idx(path)
        assert time.perf_counter() - start < 1.0
        assert str(path) in str(info.value) and "limit" in str(info.value)
    # Within the limit but far more than the (compressed) data holds.
    path = write(
        tmp_path / "big.gz",
        (0x801).to_bytes(4, "big") + np.array([10**8], ">u4").tobytes(),
    )
    start = time.perf_counter()
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    assert time.perf_counter() - start < 1.0


def test_mnist_missing_file(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / data.MNIST_FILES["test_labels"]).unlink()
    with pytest.raises(ValueError) as info:
        load("mnist", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / data.MNIST_FILES["test_labels"]) in message
    for filename in data.MNIST_FILES.values():
        assert filename in message


def test_mnist_missing_directory(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError) as info:
        load("mnist", data_dir=missing)
    assert str(missing) in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)
    with pytest.raises(ValueError, match="data_dir is required"):
        load("fashion_mnist")


def test_read_idx_missing_and_directory(tmp_path):
    with pytest.raises(ValueError, match="no such file") as info:
        read_idx(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(info.value)
    with pytest.raises(ValueError, match="cannot open"):
        read_idx(tmp_path)


# --------------------------------------------------------------------------
# Synthetic datasets


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


# --------------------------------------------------------------------------
# Argument validation, check_finite, standardize


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


@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_holdout_counts(counts, fraction, seed):
    strata = np.repeat(np.arange(len(counts)), counts)
    n = len(strata)
    n_held = min(max(1, math.ceil(fraction * n)), n)
    kept, held = data._stratified_holdout(strata, n_held, np.random.default_rng(seed))
    assert len(held) == n_held
    assert sorted(np.concatenate([kept, held])) == list(range(n))
    got = np.bincount(strata[held], minlength=len(counts))
    share = n_held * np.asarray(counts) / n
    assert np.all(got >= np.floor(share - 1e-9)) and np.all(
        got <= np.ceil(share + 1e-9)
    )
