"""The benchmark library on tiny sizes: rows are well formed (no timing asserted)."""

import functools
import json
import math

import numpy as np
import pytest

from jaxbp import bench


@pytest.fixture
def ctx():
    return bench.BenchContext.make(
        quick=True, reps=3, min_seconds=0.0, compile_reps=1, peak_n=64
    )


def _finite_positive(row, key):
    value = row[key]
    assert isinstance(value, float) and math.isfinite(value) and value > 0, (
        key,
        value,
    )


def test_dense_flops_are_counted_by_hand():
    forward, gradient = bench.dense_sizes_flops([4, 8, 2], batch=3)
    assert forward == 2 * 3 * (4 * 8 + 8 * 2)
    # backward: dW for both layers, dx only for the second
    assert gradient == forward + 2 * 3 * (4 * 8 + 8 * 2) + 2 * 3 * (8 * 2)


def test_interleaved_times_and_ratios():
    calls = {"a": lambda: np.zeros(3), "b": lambda: np.ones(3)}
    times = bench.interleaved_times(calls, reps=5, min_seconds=0.0, warmup=1)
    assert set(times) == {"a", "b"}
    assert all(t.shape == (5,) and np.all(t > 0) for t in times.values())
    cols = bench.ratio_columns("a/b", times["a"], times["b"])
    assert cols["a/b_q1"] <= cols["a/b"] <= cols["a/b_q3"]
    cols = bench.time_columns("a_ms", times["a"])
    assert set(cols) == {"a_ms", "a_ms_q1", "a_ms_q3"}


def test_matmul_rows(ctx):
    rows = bench.matmul_rows(ctx, sizes=(32, 64))
    assert [r["n"] for r in rows] == [32, 64]
    for r in rows:
        assert r["section"] == "matmul"
        for key in ("ms", "gflops"):
            _finite_positive(r, key)
        assert 0 < r["of_peak"] <= 1
    assert ctx.shared["peak_gflops"] == max(r["gflops"] for r in rows)


def test_gradient_rows(ctx):
    ctx.shared["peak_gflops"] = 1.0
    (row,) = bench.gradient_rows(ctx, configs=[((6, 8, 3), 4)])
    assert row["section"] == "gradient" and row["name"] == "6-8-3 B4"
    for k in ("manual", "autodiff", "reference", "forward", "floor", "matmul"):
        _finite_positive(row, f"{k}_ms")
        assert row[f"{k}_ms_q1"] <= row[f"{k}_ms"] <= row[f"{k}_ms_q3"]
    for key in (
        "manual/autodiff",
        "manual/reference",
        "manual/forward",
        "autodiff/forward",
        "manual_of_peak",
        "autodiff_of_peak",
        "manual_gflops",
        "manual_compile_s",
        "autodiff_compile_s",
        "manual_lower_s",
    ):
        _finite_positive(row, key)
    assert row["gradient_gflop"] * 1e9 == bench.dense_sizes_flops((6, 8, 3), 4)[1]
    # XLA counts the dense FLOPs and some elementwise work on top
    assert row["manual_xla_gflop"] >= 0.9 * row["gradient_gflop"]
    assert row["manual_hlo_ops"] > 0
    if "manual_temp_mib" in row:  # XLA's memory analysis, where available
        assert row["manual_temp_mib"] >= 0 and row["manual_argument_mib"] > 0
        assert row["step_alias_mib"] > 0  # the donated params are reused
    json.dumps(bench._jsonable(row))


def test_checkpoint_rows(ctx):
    (row,) = bench.checkpoint_rows(ctx, depths=(2,), width=8, batch=4)
    assert row["section"] == "checkpoint" and row["depth"] == 2
    assert sum(row["segments"]) == 2 * 3 - 1  # 3 dense layers + 2 activations
    for key in ("plain_manual_ms", "ckpt_manual_ms", "manual_time_ckpt/plain"):
        _finite_positive(row, key)
    for variant in ("plain_manual", "ckpt_manual", "plain_autodiff", "ckpt_autodiff"):
        _finite_positive(row, f"{variant}_ms")
    assert row["plain_manual_temp_mib"] >= 0  # (too tiny here to save memory)
    # the recomputation is really there: more FLOPs than the plain gradient
    assert row["ckpt_manual_xla_gflop"] > row["plain_manual_xla_gflop"]


def test_run_table_json_and_main(ctx, tmp_path, monkeypatch, capsys):
    tiny = [
        functools.partial(bench.matmul_rows, sizes=(32,)),
        functools.partial(bench.gradient_rows, configs=[((4, 5, 2), 3)]),
    ]
    result = bench.run(ctx, tiny)
    assert set(result) == {"machine", "settings", "rows"}
    assert result["machine"]["jax"] and result["machine"]["nproc"] >= 1
    assert [r["section"] for r in result["rows"]] == ["matmul", "gradient"]
    table = bench.format_table(result["rows"] + [{"section": "other", "x": 1.5}])
    for word in ("[matmul]", "[gradient]", "[other]", "man/auto", "4-5-2 B3"):
        assert word in table
    path = bench.write_json(result, tmp_path)
    assert json.loads(path.read_text())["rows"][1]["name"] == "4-5-2 B3"

    monkeypatch.setattr(bench, "BENCHMARKS", tiny[:1])
    monkeypatch.setattr(
        bench.BenchContext,
        "make",
        classmethod(
            lambda cls, quick=False, **kw: cls(
                quick=quick, reps=2, min_seconds=0.0, compile_reps=1, peak_n=32, **kw
            )
        ),
    )
    assert bench.main(["--quick", "--out", str(tmp_path / "cli")]) == 0
    out = capsys.readouterr().out
    assert "[matmul]" in out and (tmp_path / "cli" / "benchmark.json").exists()


def test_dot_rows(ctx):
    rows = bench.dot_rows(ctx, config=((6, 8, 3), 4))
    # layer 1: forward, dW (its dx is not needed); layer 2: forward, dW, dx
    assert len(rows) == 5 + 2
    assert all(r["section"] == "dots" for r in rows)
    for r in rows[:5]:
        assert r["kernel"] in ("ynnpack", "eigen", "other")
        for key in ("gflop", "ms", "gflops", "of_peak"):
            _finite_positive(r, key)
    assert rows[-2]["gflop"] == pytest.approx(sum(r["gflop"] for r in rows[:5]))
    assert rows[-1]["gflop"] * 1e9 == bench.dense_sizes_flops((6, 8, 3), 4)[1]


def test_profile_rows(ctx):
    rows = bench.profile_rows(ctx, configs=[((6, 8, 3), 4)])
    assert len(rows) in (0, 2)  # none where the profiler is not available
    for r in rows:
        assert r["name"].endswith(("manual", "autodiff"))
        assert r["kernels"] > 0 and r["execute_us"] > 0 and r["wall_us"] > 0
        assert r["matmul_us"] > 0 and isinstance(r["slowest_ops"], dict)


def test_epoch_rows(ctx):
    (row,) = bench.epoch_rows(ctx, sizes=(64, 8, 10), batch=256)
    assert row["section"] == "epoch" and row["steps"] == 1293 // 256
    # the loop replays the scan's batches and keys: the same parameters
    assert row["max_param_diff"] < 1e-5
    for key in ("scan_ms", "loop_ms", "loop_numpy_ms", "floor_ms", "loop/scan"):
        _finite_positive(row, key)
    assert row["at_peak_step_us"] > 0  # (timings are not asserted: noise)
    assert row["step_compile_s"] > 0 and row["scan_compile_s"] > 0
    if "step_temp_mib" in row:  # XLA's memory analysis is available
        assert row["step_temp_mib"] >= 0 and row["step_argument_mib"] > 0
        # the step holds at least its arguments (parameters, Adam's moments, batch)
        assert row["step_peak_mib"] >= row["step_argument_mib"]
    assert row["bound"] == pytest.approx(
        1 + row["dispatch_step_us"] / row["at_peak_step_us"]
    )
    if "kernel_share" in row:  # the profiler is available
        assert 0 < row["kernel_share"] and row["launches_per_step"] >= 1


def test_vmap_rows(ctx):
    (row,) = bench.vmap_rows(
        ctx, problems=[("xor", (2, 4, 2), 50)], num_models=3, epochs=1
    )
    assert row["section"] == "vmap" and row["models"] == 3
    # one vmapped program computes the three sequential runs (float32 rounding)
    assert row["max_param_diff"] < 1e-4
    for key in ("vmap_ms", "sequential_ms", "sequential/vmap", "bound"):
        _finite_positive(row, key)
    if "sort_share" in row:
        shares = row["matmul_share"] + row["sort_share"] + row["other_share"]
        assert shares == pytest.approx(1.0)
