"""A strict reader for IDX files, the format MNIST and Fashion-MNIST ship in.

The IDX format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"):

* a 4-byte magic number: two zero bytes, a type byte, and a byte giving the
  number of dimensions ``ndim``;
* ``ndim`` big-endian 32-bit sizes, one per dimension;
* the data, ``prod(sizes)`` items of the given type, big-endian, row-major.

Type bytes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64.  MNIST images are 0x00000803 (uint8, 3-D: count, rows, cols) and
MNIST labels 0x00000801 (uint8, 1-D: count).

The reader trusts nothing in the file: it checks the magic number, and that the
file holds exactly header + prod(sizes) * itemsize bytes, before allocating
anything of the advertised size.  Gzip-compressed files (path ending in
``.gz``) are decompressed in bounded chunks, so neither a corrupt header nor a
decompression bomb can make it allocate or read more than ``max_bytes``.
Every problem is reported as a :class:`ValueError` naming the file, what was
expected and what was found.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["IDX_TYPES", "MAX_IDX_BYTES", "describe_magic", "read_idx", "write_idx"]

#: IDX type byte -> numpy dtype (big-endian, as stored in the file).
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_NAMES = {
    0x08: "uint8",
    0x09: "int8",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}

#: Default cap on the size of the data part of an IDX file (1 GiB; the MNIST
#: training images are 47 MB).
MAX_IDX_BYTES = 1 << 30

_CHUNK = 1 << 20  # read gzip streams 1 MiB at a time
_TYPE_BYTES = {dtype.str[1:]: t for t, dtype in IDX_TYPES.items()}


def describe_magic(magic: int) -> str:
    """Human-readable meaning of an IDX magic number, e.g. ``'uint8, 3-D'``."""
    type_byte = (magic >> 8) & 0xFF
    ndim = magic & 0xFF
    type_name = _TYPE_NAMES.get(type_byte, f"unknown type 0x{type_byte:02x}")
    if magic >> 16:
        return f"not IDX: first two bytes 0x{magic >> 16:04x}, must be zero"
    return f"{type_name}, {ndim}-D"


def _read_bounded(f, n: int) -> bytes:
    """Read up to ``n`` bytes, in chunks (never asks the stream for more)."""
    parts = []
    remaining = n
    while remaining > 0:
        part = f.read(min(remaining, _CHUNK))
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def read_idx(
    path: str | os.PathLike,
    *,
    expected_magic: int | None = None,
    max_bytes: int = MAX_IDX_BYTES,
) -> np.ndarray:
    """Read an IDX file (plain, or gzip-compressed if ``path`` ends in ``.gz``).

    Args:
      path: the file.
      expected_magic: if given, the magic number the file must have (e.g.
        ``0x00000803`` for MNIST images, ``0x00000801`` for MNIST labels);
        checked before any data is read.
      max_bytes: refuse files whose header announces more than this many bytes
        of data.

    Returns:
      A numpy array of the file's shape, in native byte order, of the dtype
      given by the type byte (uint8 for MNIST).

    Raises:
      ValueError: the file is missing or unreadable, is not IDX, has another
        magic number than ``expected_magic``, is shorter or longer than its
        header says, or (``.gz``) is not valid gzip data.  The message names
        ``path``, what was expected and what was found.
    """
    path = Path(path)
    compressed = path.name.endswith(".gz")
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as f:
            return _read_idx_stream(f, path, compressed, expected_magic, max_bytes)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        raise ValueError(f"{path}: cannot open ({exc})") from None
    except (OSError, EOFError, zlib.error) as exc:
        # Once the file is open, these come from the gzip layer: bad gzip
        # header, truncated stream, CRC or length mismatch, bad deflate data.
        what = "corrupt gzip data" if compressed else "read error"
        raise ValueError(f"{path}: {what} ({type(exc).__name__}: {exc})") from None


def _read_magic(f, path, size_note, expected_magic) -> tuple[int, int, int]:
    """Read and check the 4-byte magic number; return ``(magic, type_byte, ndim)``."""
    head = _read_bounded(f, 4)
    if len(head) < 4:
        raise ValueError(
            f"{path}: expected a 4-byte IDX magic number, found a "
            f"{size_note}file of only {len(head)} bytes"
        )
    magic = int.from_bytes(head, "big")
    if head[:2] != b"\0\0":
        hint = ""
        if head[:2] == b"\x1f\x8b":
            hint = " (the file looks gzip-compressed: give it a .gz name)"
        raise ValueError(
            f"{path}: not an IDX file: expected magic number starting with two "
            f"zero bytes, found 0x{magic:08x}{hint}"
        )
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{path}: expected IDX magic number 0x{expected_magic:08x} "
            f"({describe_magic(expected_magic)}), found 0x{magic:08x} "
            f"({describe_magic(magic)})"
        )
    type_byte, ndim = head[2], head[3]
    if type_byte not in IDX_TYPES:
        valid = ", ".join(f"0x{t:02x} ({_TYPE_NAMES[t]})" for t in IDX_TYPES)
        raise ValueError(
            f"{path}: expected an IDX type byte among {valid}, "
            f"found 0x{type_byte:02x} (magic number 0x{magic:08x})"
        )
    if ndim == 0:
        raise ValueError(
            f"{path}: expected at least 1 dimension in the IDX magic number, "
            f"found 0 (magic number 0x{magic:08x})"
        )
    return magic, type_byte, ndim


def _read_shape(f, path, size_note, ndim) -> tuple[int, ...]:
    """Read the ``ndim`` big-endian dimension sizes that follow the magic number."""
    raw_dims = _read_bounded(f, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated header: expected {4 + 4 * ndim} bytes "
            f"({ndim} dimension sizes), found a {size_note}file of "
            f"{4 + len(raw_dims)} bytes"
        )
    return tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))


def _read_idx_stream(f, path, compressed, expected_magic, max_bytes):
    file_size = None if compressed else os.fstat(f.fileno()).st_size
    size_note = "decompressed " if compressed else ""
    _, type_byte, ndim = _read_magic(f, path, size_note, expected_magic)
    dtype = IDX_TYPES[type_byte]
    header_size = 4 + 4 * ndim
    shape = _read_shape(f, path, size_note, ndim)
    data_size = math.prod(shape) * dtype.itemsize
    expected_total = header_size + data_size
    layout = (
        f"{header_size}-byte header + {' x '.join(map(str, shape))} "
        f"{_TYPE_NAMES[type_byte]} = {expected_total} bytes"
    )
    if data_size > max_bytes:
        raise ValueError(
            f"{path}: header announces shape {shape} ({data_size} bytes of "
            f"data), more than the limit of {max_bytes} bytes"
        )

    if file_size is not None and file_size != expected_total:
        kind = "truncated" if file_size < expected_total else "too long"
        raise ValueError(
            f"{path}: file is {kind}: expected {layout}, found {file_size} bytes"
        )
    data = _read_bounded(f, data_size)
    if len(data) < data_size:
        raise ValueError(
            f"{path}: file is truncated: expected {layout}, found "
            f"{size_note}{header_size + len(data)} bytes"
        )
    # Also makes gzip check the stream's CRC and length trailer.
    extra = _read_bounded(f, 1)
    if extra:
        raise ValueError(
            f"{path}: file is too long: expected {layout}, found more "
            f"{size_note}bytes after the data"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``path`` ends in
    ``.gz``), the inverse of :func:`read_idx`; returns the path.

    ``array`` must have at least one dimension, fewer than 256 and each
    below 2**32, and one of the IDX types (uint8, int8, int16, int32,
    float32, float64): anything else is a ValueError naming ``array``.
    """
    array = np.asarray(array)
    type_byte = _TYPE_BYTES.get(array.dtype.str[1:])
    if type_byte is None:
        valid = ", ".join(_TYPE_NAMES.values())
        raise ValueError(f"array: expected a dtype among {valid}, got {array.dtype}")
    if not 1 <= array.ndim <= 255 or max(array.shape) >= 2**32:
        raise ValueError(
            f"array: expected 1 to 255 dimensions each below 2**32, got shape "
            f"{array.shape}"
        )
    header = bytes([0, 0, type_byte, array.ndim])
    header += np.asarray(array.shape, ">u4").tobytes()
    body = array.astype(array.dtype.newbyteorder(">"), copy=False).tobytes()
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header)
        f.write(body)
    return path
