"""jaxbp.data.mnist: MNIST-format IDX files in a directory, validated."""

import gzip
import tracemalloc

import chex
import numpy as np
import pytest
from data_testing import all_splits, idx_bytes, make_mnist, unstandardize, write

from jaxbp import data
from jaxbp.data import load, splits


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


def float_first(arrays, n=None, seed=0) -> data.Dataset:
    """The MNIST dataset made the plain way: every image float, then split,
    subsampled and standardized into new arrays."""

    def flat(images):
        return images.reshape(len(images), -1).astype(np.float32) / np.float32(255)

    x, y = flat(arrays["train_images"]), arrays["train_labels"].astype(np.int32)
    n_val = splits.holdout_count(len(y), 0.1, "validation", "mnist")
    tr, va = splits.stratified_holdout(
        y, n_val, np.random.default_rng(splits.FIXED_SPLIT_SEED)
    )
    train = splits.subsample_train(splits.Split(x[tr], y[tr]), n, seed, "mnist")
    test_y = arrays["test_labels"].astype(np.int32)
    return splits.make_dataset(
        "mnist",
        train,
        splits.Split(x[va], y[va]),
        splits.Split(flat(arrays["test_images"]), test_y),
        task="classification",
        num_classes=10,
    )


@pytest.mark.parametrize("n", [None, 60])
def test_mnist_is_bit_for_bit_the_float_first_dataset(tmp_path, n):
    arrays = make_mnist(tmp_path, n_train=150)
    got, want = load("mnist", data_dir=tmp_path, n=n, seed=3), float_first(arrays, n, 3)
    chex.assert_trees_all_equal(got, want)


def test_mnist_load_holds_about_one_float_copy(tmp_path, monkeypatch):
    """Splits cut from the uint8 images, standardized in place: the peak
    allocation of a load is under twice the float features it returns (every
    image made float first, then copied into splits and standardized into new
    arrays, was well over it)."""
    make_mnist(tmp_path, n_train=3000, n_test=500)
    monkeypatch.setattr(splits, "_STATS_CHUNK", 256)  # statistics' chunks small
    tracemalloc.start()
    try:
        ds = load("mnist", data_dir=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    floats = sum(split.x.nbytes for split in all_splits(ds))
    assert peak < 2 * floats


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
