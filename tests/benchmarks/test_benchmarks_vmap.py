"""benchmarks/vmap.py: N models in one vmapped program vs N runs."""

import pytest
from row_checks import assert_positive, profiled

from benchmarks.vmap import vmap_rows
from jaxbp import data


def test_vmap_rows(ctx):
    (row,) = vmap_rows(ctx, problems=[("xor", (2, 4, 2), 50)], num_models=3, epochs=1)
    assert row["section"] == "vmap" and row["models"] == 3
    # one vmapped program computes the three sequential runs (float32 rounding)
    assert row["max_param_diff"] < 1e-4
    # the program timed is the one jaxbp.train.sweep runs
    assert row["sweep_param_diff"] < 1e-6
    assert row["steps_per_epoch"] == data.load("xor").train.x.shape[0] // 50
    assert_positive(row, "vmap_ms", "sequential_ms", "sequential/vmap", "bound")
    assert_positive(row, "single_compile_s", "vmap_compile_s")
    if profiled(row):
        assert row["matmul_share"] + row["other_share"] == pytest.approx(1.0)
        assert 0 < row["single_kernel_share"] <= 1
