"""benchmarks/profiles.py: profiler traces of the gradients."""

import jax
import pytest
from row_checks import profiled

from benchmarks.profiles import profile_rows


def test_profile_rows(ctx):
    rows = profile_rows(ctx, configs=[((6, 8, 3), 4)])
    assert [r["name"] for r in rows] == ["6-8-3 B4 manual", "6-8-3 B4 autodiff"]
    for r in rows:
        if not profiled(r):
            continue
        assert r["steps"] >= 3 and r["kernels"] > 0
        assert 0 < r["execute_us"] <= r["wall_us"]
        assert r["host_us"] == pytest.approx(r["wall_us"] - r["execute_us"])
        assert r["matmul_us"] > 0 and r["matmul_gflops"] > 0
        assert 0 < len(r["slowest_ops"]) <= 6


def test_profile_rows_report_an_unavailable_profiler(ctx, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise RuntimeError("profiler busy")

    monkeypatch.setattr(jax.profiler, "start_trace", refuse)
    rows = profile_rows(ctx, configs=[((6, 8, 3), 4)])
    assert len(rows) == 2
    for r in rows:
        assert r["profile"].startswith("unavailable: the profiler did not start")
        assert "execute_us" not in r
    assert capsys.readouterr().err.count("warning: profile unavailable") == 2
