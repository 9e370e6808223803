"""jaxbp.data.idx.write_idx: the inverse of read_idx, byte for byte."""

import numpy as np
import pytest
from data_testing import idx_bytes

from jaxbp.data import read_idx, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
        np.arange(-6, 6, dtype=np.int32).reshape(3, 4),
        np.arange(-3, 3, dtype=np.int16),
        np.linspace(-1, 1, 10, dtype=np.float32).reshape(2, 5),
        np.linspace(-1, 1, 10),
        np.zeros((0, 4), np.int8),
    ],
)
def test_write_idx_roundtrips(tmp_path, array, suffix):
    path = write_idx(tmp_path / f"a{suffix}", array)
    out = read_idx(path)
    assert out.dtype == array.dtype and out.shape == array.shape
    np.testing.assert_array_equal(out, array)


def test_write_idx_writes_the_format_byte_for_byte(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / "images", images)
    assert path.read_bytes() == idx_bytes(images)
    assert path.read_bytes()[:4] == (0x803).to_bytes(4, "big")


@pytest.mark.parametrize(
    "array, found",
    [
        (np.zeros(3, np.uint16), "uint16"),
        (np.zeros(3, np.complex64), "complex64"),
        (np.float32(1.0), r"shape \(\)"),
    ],
)
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path, array, found):
    with pytest.raises(ValueError, match=f"array: expected .*{found}"):
        write_idx(tmp_path / "bad", array)
    assert not (tmp_path / "bad").exists()
