"""benchmarks/matmul.py: the peak section."""

from row_checks import assert_positive

from benchmarks.matmul import matmul_rows


def test_matmul_rows(ctx):
    rows = matmul_rows(ctx, sizes=(32, 64))
    assert [r["n"] for r in rows] == [32, 64]
    for r in rows:
        assert r["section"] == "matmul"
        assert_positive(r, "ms", "gflops")
        assert r["ms_q1"] <= r["ms"] <= r["ms_q3"]
        assert r["gflops_q1"] <= r["gflops"] <= r["gflops_q3"]
        assert 0 < r["of_peak"] <= 1
    assert ctx.shared["peak_gflops"] == max(r["gflops"] for r in rows)
