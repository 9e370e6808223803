"""benchmarks/epoch.py: a scanned epoch vs a Python loop of steps."""

import pytest
from row_checks import assert_positive, profiled

from benchmarks.epoch import epoch_rows, top_ops


def test_epoch_rows(ctx):
    (row,) = epoch_rows(ctx, sizes=(64, 8, 10), batch=256)
    assert row["section"] == "epoch" and row["steps"] == 1293 // 256
    # the loop replays the scan's batches and keys: the same parameters
    assert row["max_param_diff"] < 1e-5
    for key in ("scan_ms", "loop_ms", "loop_numpy_ms", "floor_ms", "loop/scan"):
        assert_positive(row, key)
    assert_positive(row, "at_peak_step_us", "step_compile_s", "scan_compile_s")
    # XLA's memory analysis: the step holds at least its arguments
    # (parameters, Adam's moments, the batch)
    assert row["step_temp_mib"] >= 0 and row["step_argument_mib"] > 0
    assert row["step_peak_mib"] >= row["step_argument_mib"]
    assert row["bound"] == pytest.approx(
        1 + row["dispatch_step_us"] / row["at_peak_step_us"]
    )
    if profiled(row):
        assert 0 < row["kernel_share"] and row["launches_per_step"] >= 1
        assert 0 < sum(row["top_ops"].values()) <= 1.001


def test_top_ops_are_fractions_of_the_total():
    ops = {"a": 6.0, "b": 3.0, "c": 1.0}
    assert top_ops(ops, 10.0, k=2) == {"a": 0.6, "b": 0.3}
