"""Checkpoints: bit-exact round trips, atomic saves, no pickle, clear errors."""

import json
import pickle
from pathlib import Path

import jax
import ml_dtypes
import numpy as np
import optax
import pytest
from checkpoint_trees import (
    HISTORY,
    assert_same_history,
    assert_trees_bit_equal,
    zeros_like,
)

import jaxbp
from jaxbp import checkpoint
from jaxbp.checkpoint import CheckpointError


def test_round_trip_is_bit_exact(tmp_path, tree):
    path = checkpoint.save(tmp_path, 3, tree, {"history": HISTORY, "epoch": 3})
    assert (
        path == checkpoint.latest(tmp_path) == checkpoint.checkpoint_path(tmp_path, 3)
    )
    restored, meta = checkpoint.load(path, zeros_like(tree))
    assert_trees_bit_equal(restored, tree)
    assert type(restored["jaxbp_adam"][0]) is type(tree["jaxbp_adam"][0])
    assert type(restored["optax_adam"][0]) is optax.ScaleByAdamState
    assert restored["bf16"].dtype == ml_dtypes.bfloat16
    assert meta["epoch"] == 3
    assert_same_history(meta["history"], HISTORY)
    # the restored key draws the same numbers
    np.testing.assert_array_equal(
        jax.random.normal(restored["key"], (4,)), jax.random.normal(tree["key"], (4,))
    )


def test_template_mismatch_is_a_clear_error(tmp_path, tree):
    path = checkpoint.save(tmp_path, 1, tree)
    other = dict(tree, params=jaxbp.mlp([3, 6, 2]).init(jax.random.key(0)))
    with pytest.raises(
        CheckpointError, match=r"leaf \['params'\]\[0\]\['b'\]: expected shape \(6,\)"
    ):
        checkpoint.load(path, other)
    fewer = {k: v for k, v in tree.items() if k != "optax_sgd"}
    with pytest.raises(CheckpointError, match="another model or optimizer"):
        checkpoint.load(path, fewer)


def test_keeps_only_the_newest(tmp_path, tree):
    for step in range(1, 6):
        checkpoint.save(tmp_path, step, tree, keep=2)
    assert [s for s, _ in checkpoint.all_checkpoints(tmp_path)] == [4, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-00000004.npz",
        "ckpt-00000005.npz",
    ]


def test_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, tree, monkeypatch):
    checkpoint.save(tmp_path, 1, tree, {"epoch": 1})
    real_write = checkpoint._write_npz

    def write_half_then_crash(file, arrays):
        real_write(file, arrays)
        file.seek(0)
        file.truncate(file.tell() // 2 or 10)
        raise KeyboardInterrupt("simulated crash mid-save")

    monkeypatch.setattr(checkpoint, "_write_npz", write_half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, 2, tree, {"epoch": 2})
    monkeypatch.undo()
    # no half-written checkpoint under a final name, no temporary left behind
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000001.npz"]
    restored, meta = checkpoint.load(checkpoint.latest(tmp_path), zeros_like(tree))
    assert meta == {"epoch": 1}
    assert_trees_bit_equal(restored, tree)


def test_leftover_temporary_file_is_ignored_and_cleaned(tmp_path, tree):
    checkpoint.save(tmp_path, 1, tree)
    # what a save killed by SIGKILL leaves: a partial temporary file
    stale = tmp_path / ".ckpt-tmp-killed.npz"
    stale.write_bytes(b"PK\x03\x04 half an archive")
    assert checkpoint.latest(tmp_path).name == "ckpt-00000001.npz"
    checkpoint.save(tmp_path, 2, tree)
    assert not stale.exists()
    assert checkpoint.latest(tmp_path).name == "ckpt-00000002.npz"


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_loading_never_unpickles(tmp_path, tree):
    path = checkpoint.save(tmp_path, 1, tree)
    marker = tmp_path / "code-was-executed"
    # 1. the checkpoint file replaced by a pickle
    path.write_bytes(pickle.dumps({"params": _Exploit(marker)}))
    with pytest.raises(CheckpointError, match="not a jaxbp checkpoint"):
        checkpoint.load(path, zeros_like(tree))
    # 2. an .npz archive whose members are pickled object arrays
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array([_Exploit(marker)], dtype=object))
    with pytest.raises(CheckpointError, match="allow_pickle"):
        checkpoint.load(path, zeros_like(tree))
    # 3. a raw .npy holding a pickle
    with open(path, "wb") as f:
        np.save(f, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError):
        checkpoint.load(path, zeros_like(tree))
    assert not marker.exists()


def test_corrupt_or_foreign_files_are_rejected(tmp_path, tree):
    path = checkpoint.save(tmp_path, 1, tree)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=str(path.name)):
        checkpoint.load(path, zeros_like(tree))
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps({"format": "something else"})))
    with pytest.raises(CheckpointError, match="not a jaxbp checkpoint"):
        checkpoint.load(path, zeros_like(tree))
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "missing.npz", zeros_like(tree))
