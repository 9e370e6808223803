"""benchmarks/checkpoint.py: plain vs checkpointed deep MLPs."""

import pytest
from row_checks import assert_positive

from benchmarks import checkpoint, xla


def test_checkpoint_rows(ctx):
    (row,) = checkpoint.checkpoint_rows(ctx, depths=(2,), width=8, batch=4)
    assert row["section"] == "checkpoint" and row["depth"] == 2
    assert sum(row["segments"]) == 2 * 3 - 1  # 3 dense layers + 2 activations
    for variant in ("plain_manual", "ckpt_manual", "plain_autodiff", "ckpt_autodiff"):
        assert_positive(row, f"{variant}_ms")
        assert row[f"{variant}_temp_mib"] >= 0  # (too tiny here to save memory)
    assert_positive(row, "manual_time_ckpt/plain", "autodiff_time_ckpt/plain")
    # the recomputation is really there: more FLOPs than the plain gradient
    assert row["ckpt_manual_xla_gflop"] > row["plain_manual_xla_gflop"]
    assert "plain_manual_rss_mib" not in row  # quick: no fresh process


def test_checkpoint_rss_in_a_fresh_process():
    rss = checkpoint.checkpoint_rss(depth=2, width=8, batch=4)
    assert set(rss) == {"plain_manual_rss_mib", "ckpt_manual_rss_mib"}
    assert all(value >= 0 for value in rss.values())


def test_checkpoint_rss_without_proc_is_reported(ctx, monkeypatch, capsys):
    monkeypatch.setattr(checkpoint.Path, "exists", lambda self: False)
    with pytest.raises(xla.Unavailable, match="clear_refs"):
        checkpoint.checkpoint_rss(depth=2, width=8, batch=4)
    (row,) = checkpoint.checkpoint_rows(
        ctx, depths=(2,), width=8, batch=4, measure_rss=True
    )
    assert row["rss"].startswith("unavailable: no /proc/self/clear_refs")
    assert "warning: rss unavailable" in capsys.readouterr().err
