"""jaxbp.data.idx: the strict IDX reader (types, gzip, limits, errors)."""

import gzip
import time

import numpy as np
import pytest
from data_testing import idx_bytes, write

from jaxbp.data import read_idx


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


def test_read_idx_missing_and_directory(tmp_path):
    with pytest.raises(ValueError, match="no such file") as info:
        read_idx(tmp_path / "absent")
    assert str(tmp_path / "absent") in str(info.value)
    with pytest.raises(ValueError, match="cannot open"):
        read_idx(tmp_path)
