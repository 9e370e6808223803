"""Helpers of the data tests: IDX files written by hand, and split utilities."""

import gzip

import numpy as np

from jaxbp import data
from jaxbp.data import Dataset


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
