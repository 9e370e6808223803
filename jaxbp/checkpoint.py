"""Checkpoints: a pytree of arrays plus JSON metadata, saved atomically, loaded without pickle.

::

    path = checkpoint.save(directory, step, tree, metadata, keep=2)
    tree, metadata = checkpoint.load(checkpoint.latest(directory), template)

(``jaxbp.checkpoint_saver.BackgroundSaver`` runs :func:`save` in a background
thread: what ``jaxbp.train.fit`` uses.)

**Format.** One checkpoint is one file, ``ckpt-<step>.npz``: a NumPy ``.npz``
archive holding every array leaf of the tree (flattened in ``jax.tree`` order)
and, as one string member, JSON metadata: the format version, the step, each
leaf's path, shape and dtype, and the caller's metadata (``fit`` stores the
epoch, the history, early-stopping bookkeeping and its configuration). PRNG
keys (typed ``jax.random.key`` arrays) are stored as their ``key_data`` with
the implementation's name and re-wrapped on load; dtypes NumPy does not know
natively (bfloat16, ...) are stored as their raw bits. Values round-trip bit
for bit.

**Loading never executes code.** The file must be a zip archive, it is read
with ``np.load(..., allow_pickle=False)`` (a pickle, or an ``.npz`` member of
object dtype, is rejected with :class:`CheckpointError`), and the metadata is
JSON. The tree *structure* is not stored as code either: it comes from a
``template``, a freshly initialised tree of the same kind (optimizer states
are NamedTuples, which only the live code can build). The stored leaf paths,
shapes and dtypes must match the template's, else :class:`CheckpointError`
says which leaf differs.

**Atomic.** :func:`save` writes to a temporary file in the same directory
(``.ckpt-tmp-*``), flushes and ``fsync`` s it, renames it over the final name
with ``os.replace`` (atomic on POSIX and Windows), then ``fsync`` s the
directory. A process killed at any point leaves either the complete new
checkpoint or none, and the previous checkpoints are untouched: older ones are
deleted (all but the newest ``keep``) only after the new one is durable.
Temporary files are never taken for checkpoints, and leftovers of a killed
save are removed by the next save. One writer per directory.

**Why not orbax-checkpoint?** Orbax is the JAX ecosystem's standard and the
right tool for sharded, multi-host or very large states (it also renames a
temporary directory atomically, restores exactly and handles typed PRNG
keys). For this project's small single-host states it is the slower choice:
one save of a small MLP's params, Adam state and key through its
``CheckpointManager`` (synchronous; its async mode blocks about as long) takes
several times longer than ``np.savez`` + ``fsync`` + rename here, most of it
the two ``fsync`` s (the train benchmark, ``train_benchmark.py``, times both;
the README has the numbers). ``jaxbp train`` checkpoints every epoch and a
small model's epoch is shorter than a save, so orbax would make saving most
of the run. Orbax also adds a heavy dependency (tensorstore, async machinery)
and writes a directory tree of files per step; we found no ``fsync`` before
its rename in its Python code (what tensorstore does below was not checked).
So: a few hundred lines of NumPy and JSON, one self-describing file per
checkpoint, tests for the crash and no-pickle guarantees, and saves in a
background thread (``jaxbp.checkpoint_saver``) so that even the ``fsync`` is
off the training loop's path.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

FORMAT = "jaxbp-checkpoint"
VERSION = 1
_PREFIX = "ckpt-"
_SUFFIX = ".npz"
_TMP_PREFIX = ".ckpt-tmp-"
_NAME = re.compile(r"^ckpt-(\d+)\.npz$")
_META = "__meta__"
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, not a jaxbp checkpoint, or does not
    match the tree it is restored into."""


# ---------------------------------------------------------------- finding


def checkpoint_path(directory, step: int) -> Path:
    """The file name of the checkpoint for ``step`` in ``directory``."""
    return Path(directory) / f"{_PREFIX}{int(step):08d}{_SUFFIX}"


def all_checkpoints(directory) -> list[tuple[int, Path]]:
    """``(step, path)`` of every complete checkpoint in ``directory``, oldest first.

    Only final names count: temporary files of an unfinished save never do.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return sorted(found)


def latest(directory) -> Path | None:
    """The newest checkpoint in ``directory`` (highest step), or None."""
    found = all_checkpoints(directory)
    return found[-1][1] if found else None


# ---------------------------------------------------------------- encoding


def _is_key(leaf) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _encode_leaf(leaf) -> tuple[np.ndarray, dict]:
    """A leaf as a plain NumPy array and its description for the metadata."""
    if _is_key(leaf):
        data = np.asarray(jax.random.key_data(leaf))
        info = {"kind": "key", "impl": str(jax.random.key_impl(leaf))}
        return data, {**info, "shape": list(np.shape(leaf)), "dtype": "key"}
    array = np.asarray(leaf)
    info = {"kind": "array", "shape": list(array.shape), "dtype": array.dtype.name}
    if array.dtype.isbuiltin != 1 or array.dtype.kind not in "biufc":
        # bfloat16 and friends: store the raw bits as unsigned integers.
        bits = np.dtype(f"u{array.dtype.itemsize}")
        return np.ascontiguousarray(array).view(bits), {**info, "kind": "bits"}
    return array, info


def _template_info(leaf) -> tuple[list[int], str]:
    if _is_key(leaf):
        return list(np.shape(leaf)), "key"
    return list(np.shape(leaf)), np.dtype(leaf.dtype).name


def _decode_leaf(array: np.ndarray, info: dict, template_leaf, where: str):
    shape, dtype = _template_info(template_leaf)
    if info.get("shape") != shape or info.get("dtype") != dtype:
        raise CheckpointError(
            f"{where}: expected shape {tuple(shape)} and dtype {dtype} (from the "
            f"template), found shape {tuple(info.get('shape', ()))} and dtype "
            f"{info.get('dtype')}"
        )
    if info["kind"] == "key":
        return jax.random.wrap_key_data(jnp.asarray(array), impl=info["impl"])
    if info["kind"] == "bits":
        array = array.view(np.dtype(template_leaf.dtype))
    elif array.dtype != np.dtype(dtype):
        raise CheckpointError(f"{where}: stored dtype {array.dtype} != {dtype}")
    if list(array.shape) != shape:
        raise CheckpointError(f"{where}: stored shape {array.shape} != {shape}")
    return jnp.asarray(array)


# ---------------------------------------------------------------- saving


def _write_npz(file, arrays: dict[str, np.ndarray]) -> None:
    """Write the archive (a separate function so tests can simulate a crash)."""
    np.savez(file, **arrays)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(directory, step: int, tree: Any, metadata: dict | None = None, *, keep=2):
    """Save ``tree`` (a pytree of arrays) and JSON ``metadata`` as ``step``, atomically.

    Writes ``ckpt-<step>.npz`` in ``directory`` (created if needed) through a
    temporary file, ``fsync`` and ``os.replace``, then deletes all but the
    newest ``keep`` checkpoints (``keep=None`` keeps all) and leftover
    temporary files. Returns the checkpoint's path.
    """
    if keep is not None and (not isinstance(keep, int) or keep < 1):
        raise ValueError(f"keep must be a positive integer or None; got {keep!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    leaves_with_paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    leaves = jax.device_get([leaf for _, leaf in leaves_with_paths])
    arrays, infos = {}, []
    for i, ((path, _), leaf) in enumerate(zip(leaves_with_paths, leaves)):
        array, info = _encode_leaf(leaf)
        arrays[f"leaf_{i:05d}"] = array
        infos.append({"path": jax.tree_util.keystr(path), **info})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "step": int(step),
        "leaves": infos,
        "metadata": metadata or {},
    }
    arrays[_META] = np.array(json.dumps(meta, allow_nan=True))

    final = checkpoint_path(directory, step)
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)
    _prune(directory, keep, final)
    return final


def _prune(directory: Path, keep: int | None, just_saved: Path) -> None:
    """Delete older checkpoints beyond the newest ``keep``, and stale temp files."""
    if keep is not None:
        for _, path in all_checkpoints(directory)[:-keep]:
            if path != just_saved:
                with contextlib.suppress(OSError):
                    path.unlink()
    for entry in directory.glob(_TMP_PREFIX + "*"):
        with contextlib.suppress(OSError):
            entry.unlink()


# ---------------------------------------------------------------- loading


def read_metadata(path) -> dict:
    """The stored metadata of a checkpoint (format, step, leaves, metadata)."""
    with _open(path) as archive:
        return _metadata(archive, path)


@contextlib.contextmanager
def _open(path):
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_ZIP_MAGIC))
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    if magic != _ZIP_MAGIC:
        raise CheckpointError(
            f"{path} is not a jaxbp checkpoint (not an .npz archive); "
            "checkpoints are never unpickled"
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    with archive:
        yield archive


def _member(archive, name: str, path) -> np.ndarray:
    try:
        return archive[name]
    except KeyError as e:
        raise CheckpointError(f"checkpoint {path} has no member {name!r}") from e
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        # ValueError includes "Object arrays cannot be loaded when allow_pickle=False"
        raise CheckpointError(f"cannot read {name!r} of checkpoint {path}: {e}") from e


def _metadata(archive, path) -> dict:
    raw = _member(archive, _META, path)
    if raw.dtype.kind != "U" or raw.shape != ():
        raise CheckpointError(f"checkpoint {path} has malformed metadata")
    try:
        meta = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path} has malformed metadata: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jaxbp checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {meta.get('version')}; "
            f"this jaxbp reads version {VERSION}"
        )
    return meta


def load(path, template: Any, *, part: bool = False) -> tuple[Any, dict]:
    """``(tree, metadata)`` from the checkpoint at ``path``.

    ``template`` is a tree of the same structure (e.g. freshly initialised
    parameters and optimizer state): it supplies the tree structure and the
    expected shapes and dtypes. With ``part=True`` the template may be a part
    of the stored tree (every one of its leaf paths stored, e.g.
    ``{"train_state": {"params": params}}`` of a fit's checkpoint): only
    those leaves are read. Raises :class:`CheckpointError` when the file is
    not a jaxbp checkpoint, is corrupt, or does not match ``template``.
    """
    template_leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    paths = [jax.tree_util.keystr(p) for p, _ in template_leaves]
    with _open(path) as archive:
        meta = _metadata(archive, path)
        stored = [info.get("path") for info in meta.get("leaves", [])]
        if set(paths) - set(stored) or (not part and stored != paths):
            missing = sorted(set(paths) - set(stored))[:5]
            extra = [] if part else sorted(set(stored) - set(paths))[:5]
            raise CheckpointError(
                f"checkpoint {path} does not match the tree it is restored into "
                f"({len(stored)} stored leaves, {len(paths)} expected; missing "
                f"{missing}, unexpected {extra}): was it written for another "
                "model or optimizer?"
            )
        position = {leaf_path: i for i, leaf_path in enumerate(stored)}
        leaves = []
        for leaf_path, (_, template_leaf) in zip(paths, template_leaves):
            i = position[leaf_path]
            array = _member(archive, f"leaf_{i:05d}", path)
            where = f"checkpoint {path}, leaf {leaf_path}"
            info = meta["leaves"][i]
            leaves.append(_decode_leaf(array, info, template_leaf, where))
    tree = jax.tree_util.tree_unflatten(treedef, leaves)
    return tree, meta["metadata"]
