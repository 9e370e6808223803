"""benchmarks/startup.py: the phases of a fresh ``jaxbp train`` process add up
to its wall time, and every program it makes is named."""

import json

import pytest

from benchmarks import startup


def record(spans):
    marks = {"imported": 1.0, "prepared": 1.25, "trained": 4.0, "written": 4.5}
    return {"exit": 0, "marks": marks, "spans": spans}


def test_phases_split_the_wall_time():
    """A trace nested in a lower counts once; a span before training (the
    CLI's own) is not training's."""
    spans = [
        ["trace", "f", 1.5, 1.7],
        ["key", "f", 1.7, 1.75],
        ["lower", "jit(f)", 1.6, 1.9],
        ["compile", "jit(f)", 1.9, 2.5],
        ["compile", "jit(g)", 1.1, 1.2],
    ]
    got = startup.phases(5.0, record(spans))
    assert got["making programs"] == pytest.approx(1.0)
    assert got["  of which tracing"] == pytest.approx(0.2)
    assert got["  of which keying"] == pytest.approx(0.05)
    assert got["  of which lowering"] == pytest.approx(0.3)
    assert got["  of which compiling or loading"] == pytest.approx(0.6)
    assert got["epochs and test evaluation"] == pytest.approx(2.75 - 1.0)
    assert got["interpreter start and exit"] == pytest.approx(0.5)
    parts = [
        p for p in startup.PHASES if not p.startswith(" ") and p != "whole process"
    ]
    assert sum(got[p] for p in parts) == pytest.approx(got["whole process"])
    assert startup.programs(record(spans))["f"] == pytest.approx(
        {"trace": 0.2, "key": 0.05, "lower": 0.3, "compile": 0.6}
    )


def test_quick_run_times_every_phase_and_names_the_programs(tmp_path, capsys):
    assert startup.main(["--quick", "--out", str(tmp_path), "--epochs", "1"]) == 0
    result = json.loads((tmp_path / "startup.json").read_text())["results"]
    for mode in startup.MODES:
        (run,) = result[mode]["runs"]
        assert all(run[p] >= 0 for p in startup.PHASES)
        parts = [p for p in startup.PHASES if not p.startswith(" ")][:-1]
        assert sum(run[p] for p in parts) == pytest.approx(run["whole process"])
        made = set(result[mode]["programs"])
        assert {"_keys_of_seed", "bits_of", "init_from_bits", "init"} <= made
        assert {"batches_of_epoch", "train_and_eval"} <= made
    assert "seconds per phase" in capsys.readouterr().out
