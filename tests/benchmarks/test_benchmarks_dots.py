"""benchmarks/dots.py: each matrix product of a gradient alone."""

import pytest
from row_checks import assert_positive

from benchmarks.dots import dot_rows, layer_dots
from benchmarks.problems import dense_sizes_flops


def test_layer_dots_are_the_gradients_products():
    dots = layer_dots((6, 8, 3), 4)
    # layer 1: forward, dW (its dx is not needed); layer 2: forward, dW, dx
    assert [name.split(" ", 2)[2] for name in dots] == [
        "forward x W",
        "dW = xT dy",
        "forward x W",
        "dW = xT dy",
        "dx = dy WT",
    ]
    _, gradient_flops = dense_sizes_flops((6, 8, 3), 4)
    assert sum(d[3] for d in dots.values()) == gradient_flops


def test_dot_rows(ctx):
    rows = dot_rows(ctx, config=((6, 8, 3), 4))
    assert len(rows) == 5 + 2
    assert all(r["section"] == "dots" for r in rows)
    for r in rows[:5]:
        assert r["kernel"] in ("ynnpack", "eigen", "other")
        assert_positive(r, "gflop", "ms", "gflops", "of_peak")
    assert rows[-2]["name"].endswith("sum of the dots alone")
    assert rows[-2]["gflop"] == pytest.approx(sum(r["gflop"] for r in rows[:5]))
    assert rows[-2]["ms"] == pytest.approx(sum(r["ms"] for r in rows[:5]))
    assert rows[-1]["gflop"] * 1e9 == dense_sizes_flops((6, 8, 3), 4)[1]
