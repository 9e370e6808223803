"""The optimization experiments run (quick mode) and show their headline claim.

Each script runs as a user runs it (``run_quick``: a subprocess writing JSON
and PNG to a temporary directory); the assertions are on the JSON it wrote.
Wall-clock orderings are recorded by the scripts but not asserted (the
machine is shared and noisy).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

OPTIMIZERS = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}


def test_learning_rate(run_quick):
    r = run_quick("learning_rate")
    h = r["headline"]
    # The largest learning rate diverges (every seed), the smallest barely moves.
    assert h["largest_lr_all_diverged"]
    assert h["smallest_lr_barely_moved"]
    assert h["smallest_lr_final_over_initial"] > 0.9
    # The best is far lower than the initial loss, and lies strictly inside the grid.
    assert h["best_final_over_initial"] < 0.1
    assert h["smallest_lr"] < h["best_lr"] < h["largest_lr"]
    # Every legend entry of the loss curves is visible: some point inside the
    # axes that no other entry draws (a diverged run used to leave only its
    # initial point, hidden under the others'); the largest rate is listed,
    # its label saying that it diverged.
    legends = r["figure_legends"]["loss_curves"]
    assert all(entry["own_points"] >= 1 for entry in legends), legends
    largest = [e["label"] for e in legends if f"{h['largest_lr']:.3g}" in e["label"]]
    assert len(largest) == 1 and "diverged at epoch" in largest[0], legends


def test_optimizers(run_quick):
    r = run_quick("optimizers")
    assert set(r["optimizers"]) == OPTIMIZERS
    for name, o in r["optimizers"].items():
        agreement = o["jaxbp_vs_optax"]
        assert agreement["max_rel_diff_loss"] <= 1e-5, name
        assert agreement["max_rel_diff_params"] <= 1e-5, name
        assert agreement["nonfinite_mismatches"] == 0, name
        assert agreement["steps_compared"] > 0, name
        assert math.isfinite(o["final_train_loss_mean"]), name
        assert o["test_accuracy_mean"] > 0.8, name


def test_gd_variants(run_quick):
    r = run_quick("gd_variants")
    h = r["headline"]
    # Per epoch: batch 1 makes the most progress, full batch the least.
    assert h["per_epoch_order"] == ["stochastic", "minibatch", "full"]
    assert h["per_epoch_order_epoch1"] == ["stochastic", "minibatch", "full"]
    # Per update: batch 1 makes the least progress; full batch and batch 32 are
    # within 2% of each other.
    assert h["per_update_order"][-1] == "stochastic"
    assert h["per_update_stochastic_over_full"] > 1.05
    assert abs(h["per_update_full_over_minibatch"] - 1) < 0.02
    # Wall-clock results are recorded, not asserted.
    timing = r["timing"]["per_variant"]
    assert all(timing[v]["update_seconds_median"] > 0 for v in timing)
    assert set(h["per_second_order_common_lr"]) == {"full", "stochastic", "minibatch"}


def test_local_minima(run_quick):
    xor = run_quick("local_minima")["xor"]
    success = xor["success_fraction"]
    assert xor["widths"][0] < xor["widths"][-1]
    assert success[-1] > success[0]
    assert success[-1] >= 0.95
    # A 2-1-1 net cannot represent XOR: no seed can succeed.
    if xor["widths"][0] == 1:
        assert success[0] == 0.0
    assert all(0.0 <= s <= 1.0 for s in success)


def test_cnn_selection(run_quick):
    results = run_quick("cnn_selection")
    assert set(results["candidates"]) == {"adam", "adamw 1.0"}
    for candidate in results["candidates"].values():
        assert len(candidate["fold_errors"]) == results["folds"] == 2
        assert candidate["errors"] == sum(candidate["fold_errors"])
        assert 0.5 < candidate["accuracy"] <= 1.0  # two epochs learn something
    assert results["chosen"] in results["candidates"]
    assert results["preset"] == {"optimizer": "adamw", "weight_decay": 1.0}


def test_accuracy_quick(tmp_path):
    """accuracy.py runs ``jaxbp train`` per seed and reports their median (it
    writes ``accuracy_mlp.json`` and no figure, so not through ``run_quick``)."""
    command = [sys.executable, str(REPO / "experiments" / "accuracy.py"), "--quick"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads((tmp_path / "accuracy_mlp.json").read_text())
    assert r["quick"] is True and r["model"] == "mlp"
    accuracies = sorted(run["test_accuracy"] for run in r["runs"])
    assert [run["seed"] for run in r["runs"]] == [0, 1]
    assert r["median_test_accuracy"] == (accuracies[0] + accuracies[1]) / 2
    assert 0.5 < r["median_test_accuracy"] <= 1.0  # three epochs learn something
    assert r["meets_target"] == (r["median_test_accuracy"] >= r["target"])
