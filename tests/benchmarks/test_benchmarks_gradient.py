"""benchmarks/gradient.py: manual vs autodiff vs reference gradients."""

import json

from row_checks import assert_ordered_quartiles, assert_positive

from benchmarks import report
from benchmarks.gradient import gradient_rows
from benchmarks.problems import dense_sizes_flops


def test_gradient_rows(ctx):
    ctx.shared["peak_gflops"] = 1.0
    (row,) = gradient_rows(ctx, configs=[((6, 8, 3), 4)])
    assert row["section"] == "gradient" and row["name"] == "6-8-3 B4"
    for k in ("manual", "autodiff", "reference", "forward", "floor", "matmul"):
        assert_positive(row, f"{k}_ms")
        assert_ordered_quartiles(row, f"{k}_ms")
    ratios = ("manual/autodiff", "manual/reference", "manual/forward")
    assert_positive(row, *ratios, "autodiff/forward")
    assert_ordered_quartiles(row, *ratios)
    assert_positive(row, "manual_of_peak", "autodiff_of_peak", "manual_gflops")
    assert row["manual_of_section_peak"] == row["manual_gflops"]  # peak 1 GFLOP/s
    assert_positive(row, "manual_compile_s", "autodiff_compile_s", "manual_lower_s")
    assert row["gradient_gflop"] * 1e9 == dense_sizes_flops((6, 8, 3), 4)[1]
    # XLA counts the dense FLOPs and some elementwise work on top
    assert row["manual_xla_gflop"] >= 0.9 * row["gradient_gflop"]
    assert row["forward_xla_gflop"] < row["manual_xla_gflop"]
    assert row["manual_hlo_ops"] > 0 and row["autodiff_hlo_ops"] > 0
    # XLA's memory analysis
    for k in ("manual", "autodiff", "step"):
        assert row[f"{k}_temp_mib"] >= 0 and row[f"{k}_argument_mib"] > 0
    assert row["step_alias_mib"] > 0  # the donated params are reused
    json.dumps(report.to_jsonable(row), allow_nan=False)
