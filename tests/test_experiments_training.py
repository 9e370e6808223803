"""The training experiments run end to end (quick mode) and show their headline.

Each script is imported by path and run as ``main(["--quick", "--out", tmp])``;
it must write its JSON and a small PNG, and its returned results must show
the claim the experiment is about (robust assertions: quick runs are small
and the machine may be loaded, so no tight timing or accuracy thresholds).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def run_quick(name: str, out: Path) -> dict:
    spec = importlib.util.spec_from_file_location(
        f"_experiment_{name}", EXPERIMENTS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--quick", "--out", str(out)])
    written = json.loads((out / f"{name}.json").read_text())
    assert written["experiment"] == name
    assert written["quick"] is True
    png = out / f"{name}.png"
    assert png.is_file()
    assert 0 < png.stat().st_size < 150_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


def test_regularization(tmp_path):
    results = run_quick("regularization", tmp_path)
    table = results["table"]
    none = table["none"]
    # Without regularization the net memorizes: train loss << validation loss.
    assert none["train_loss"] < 0.1 * none["val_loss"]
    assert none["train_acc"] == 1.0
    # L2 and early stopping shrink the loss gap (early stopping can only:
    # it picks the lowest validation loss, where the train loss is higher).
    assert table["L2"]["loss_gap"] < none["loss_gap"]
    assert table["early_stopping"]["loss_gap"] <= none["loss_gap"]
    for name in ("none", "L2", "dropout", "early_stopping"):
        assert 0.8 < table[name]["test_acc"] <= 1.0
        assert math.isfinite(table[name]["loss_gap"])
    assert set(results["headline"]["reduces_loss_gap"]) == {
        "L2",
        "dropout",
        "early_stopping",
    }


def test_local_minima(tmp_path):
    results = run_quick("local_minima", tmp_path)
    xor = results["xor"]
    success = xor["success_fraction"]
    assert xor["widths"][0] < xor["widths"][-1]
    assert success[-1] > success[0]
    assert success[-1] >= 0.95
    # A 2-1-1 net cannot represent XOR: no seed can succeed.
    if xor["widths"][0] == 1:
        assert success[0] == 0.0
    assert all(0.0 <= s <= 1.0 for s in success)


def test_backprop_cost(tmp_path):
    results = run_quick("backprop_cost", tmp_path)
    rows = results["rows"]
    assert len(rows) >= 2
    assert rows[0]["n_params"] < rows[-1]["n_params"]
    # Reverse mode: a few forward passes, at every size (loose bound: timing).
    for row in rows:
        assert row["manual_ratio"] < 10, row
        assert row["rel_error_vs_manual"]["autodiff"] < 1e-4
    # Finite differences: 2P forward passes, so the cost grows with P.
    fd = [r for r in rows if "finite_diff_ms" in r]
    assert len(fd) >= 2
    assert fd[-1]["finite_diff_ms"] > 3 * fd[0]["finite_diff_ms"]
    assert fd[-1]["finite_diff_ratio"] > fd[0]["finite_diff_ratio"]
    assert fd[-1]["finite_diff_ratio"] > 5 * fd[-1]["manual_ratio"]


def test_batchnorm(tmp_path):
    results = run_quick("batchnorm", tmp_path)
    at_step = results["headline"]["test_accuracy_at_step"]
    with_bn, without_bn = at_step["with BN"], at_step["without BN"]
    # After 105 steps (5 epochs) the batch-norm net is ahead.
    assert with_bn["105"] > without_bn["105"]
    steps_to_90 = results["headline"]["steps_to_0.90"]
    assert steps_to_90["with BN"] is not None
    assert steps_to_90["without BN"] is None or (
        steps_to_90["with BN"] < steps_to_90["without BN"]
    )


def test_cnn_selection(tmp_path):
    results = run_quick("cnn_selection", tmp_path)
    assert set(results["candidates"]) == {"adam", "adamw 1.0"}
    for candidate in results["candidates"].values():
        assert len(candidate["fold_errors"]) == results["folds"] == 2
        assert candidate["errors"] == sum(candidate["fold_errors"])
        assert 0.5 < candidate["accuracy"] <= 1.0  # two epochs learn something
    assert results["chosen"] in results["candidates"]
    assert results["preset"] == {"optimizer": "adamw", "weight_decay": 1.0}
