"""benchmarks/benchmark.py: running sections, the tables, the script."""

import functools
import json
import subprocess
import sys
from pathlib import Path

from benchmarks import benchmark
from benchmarks.context import BenchContext
from benchmarks.gradient import gradient_rows
from benchmarks.matmul import matmul_rows

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    functools.partial(matmul_rows, sizes=(32,)),
    functools.partial(gradient_rows, configs=[((4, 5, 2), 3)]),
]


def test_every_section_has_columns():
    sections = {
        "matmul",
        "gradient",
        "profile",
        "dots",
        "checkpoint",
        "epoch",
        "vmap",
        "sequence",
    }
    assert len(benchmark.SECTIONS) == len(sections) == len(benchmark.COLUMNS)
    assert set(benchmark.COLUMNS) == sections


def test_run_collects_rows_machine_and_settings(ctx):
    result = benchmark.run(ctx, TINY)
    assert set(result) == {"machine", "settings", "rows"}
    assert result["machine"]["jax"] and result["machine"]["nproc"] >= 1
    assert [r["section"] for r in result["rows"]] == ["matmul", "gradient"]
    settings = result["settings"]
    assert settings["quick"] and settings["reps"] == 3 and settings["seconds"] > 0
    assert settings["peak_gflops"] == result["rows"][0]["gflops"]


def test_print_tables(capsys):
    rows = [
        {"section": "matmul", "name": "m", "ms": 1.5, "gflops": 2.0, "of_peak": 0.5},
        {
            "section": "gradient",
            "name": "4-5-2 B3",
            "manual/autodiff": 0.98,
            "manual/autodiff_q1": 0.9,
            "manual/autodiff_q3": 1.1,
            "manual_temp_mib": "unavailable: no memory analysis",
        },
        {"section": "other", "name": "x", "value": 1.5},
    ]
    benchmark.print_tables(rows)
    out = capsys.readouterr().out
    for text in ("[matmul]", "[gradient]", "[other]", "50%", "0.900-1.100", "n/a"):
        assert text in out
    gradient_table = out.split("[gradient]")[1].split("[other]")[0]
    assert "0.980" in gradient_table and "man/auto" in gradient_table


def test_main_writes_the_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "SECTIONS", TINY[:1])
    monkeypatch.setattr(
        BenchContext,
        "make",
        classmethod(
            lambda cls, quick=False, **kw: cls(
                quick=quick, reps=2, min_seconds=0.0, compile_reps=1, peak_n=32, **kw
            )
        ),
    )
    assert benchmark.main(["--quick", "--out", str(tmp_path)]) == 0
    assert "[matmul]" in capsys.readouterr().out
    written = json.loads((tmp_path / "benchmark.json").read_text())
    assert written["rows"][0]["name"] == "32x32 @ 32x32 f32"


def test_the_script_runs_from_the_repository_root():
    done = subprocess.run(
        [sys.executable, "benchmarks/benchmark.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--quick" in done.stdout and "--out" in done.stdout
