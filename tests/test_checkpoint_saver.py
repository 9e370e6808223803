"""The background saver: the newest request is written, and a failed save is
reported in the training thread."""

import pytest
from checkpoint_trees import (
    HISTORY,
    assert_same_history,
    assert_trees_bit_equal,
    zeros_like,
)

from jaxbp import checkpoint
from jaxbp.checkpoint_saver import BackgroundSaver


def test_background_saver_writes_the_newest_request(tmp_path, tree):
    saver = BackgroundSaver(tmp_path, keep=2)
    for step in range(1, 21):
        saver.request(step, tree, {"step": step, "history": HISTORY})
    path = saver.flush()
    assert (
        path == checkpoint.latest(tmp_path) == checkpoint.checkpoint_path(tmp_path, 20)
    )
    restored, meta = checkpoint.load(path, zeros_like(tree))
    assert_trees_bit_equal(restored, tree)
    assert meta["step"] == 20
    assert_same_history(meta["history"], HISTORY)
    saver.request(21, tree)
    assert saver.close() == checkpoint.checkpoint_path(tmp_path, 21)
    assert len(checkpoint.all_checkpoints(tmp_path)) <= 2


def test_background_saver_reports_a_failed_save(tmp_path, tree, monkeypatch):
    saver = BackgroundSaver(tmp_path)
    saver.request(1, tree)
    saver.flush()

    def disk_full(file, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_npz", disk_full)
    saver.request(2, tree)
    with pytest.raises(OSError, match="No space left"):
        saver.flush()
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000001.npz"]
    saver.request(3, tree)
    assert saver.close().name == "ckpt-00000003.npz"
