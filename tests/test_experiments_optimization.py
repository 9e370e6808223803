"""The optimization experiments run (quick mode), write their outputs and show their effect.

Each script under experiments/ is imported by path and its ``main`` run with
``--quick --out tmp_path``; we check the JSON and PNG are written and assert
the headline claim from the returned results. Wall-clock orderings are
recorded by the scripts but not asserted (the machine is shared and noisy).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def run_quick(name: str, out: Path) -> dict:
    spec = importlib.util.spec_from_file_location(
        f"experiment_{name}", EXPERIMENTS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--quick", "--out", str(out)])
    json_path, png_path = out / f"{name}.json", out / f"{name}.png"
    assert json_path.is_file()
    assert png_path.is_file()
    assert 0 < png_path.stat().st_size < 150_000
    written = json.loads(json_path.read_text())
    assert written["experiment"] == name
    assert written["quick"] is True
    return results


def test_learning_rate(tmp_path):
    r = run_quick("learning_rate", tmp_path)
    h = r["headline"]
    # The largest learning rate diverges (every seed), the smallest barely moves.
    assert h["largest_lr_all_diverged"]
    assert h["smallest_lr_barely_moved"]
    assert h["smallest_lr_final_over_initial"] > 0.9
    # The best is far lower than the initial loss, and lies strictly inside the grid.
    assert h["best_final_over_initial"] < 0.1
    assert h["smallest_lr"] < h["best_lr"] < h["largest_lr"]


def test_optimizers(tmp_path):
    r = run_quick("optimizers", tmp_path)
    assert set(r["optimizers"]) == {
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "adamw",
    }
    for name, o in r["optimizers"].items():
        agreement = o["jaxbp_vs_optax"]
        assert agreement["max_rel_diff_loss"] <= 1e-5, name
        assert agreement["max_rel_diff_params"] <= 1e-5, name
        assert agreement["nonfinite_mismatches"] == 0, name
        assert agreement["steps_compared"] > 0, name
        assert math.isfinite(o["final_train_loss_mean"]), name
        assert o["test_accuracy_mean"] > 0.8, name


def test_gd_variants(tmp_path):
    r = run_quick("gd_variants", tmp_path)
    h = r["headline"]
    # Per epoch: batch 1 makes the most progress, full batch the least.
    assert h["per_epoch_order"] == ["stochastic", "minibatch", "full"]
    assert h["per_epoch_order_epoch1"] == ["stochastic", "minibatch", "full"]
    # Per update: batch 1 makes the least progress; full batch and batch 32 are
    # within 2% of each other (we measure batch 32 marginally ahead).
    assert h["per_update_order"][-1] == "stochastic"
    assert h["per_update_stochastic_over_full"] > 1.05
    assert abs(h["per_update_full_over_minibatch"] - 1) < 0.02
    # Wall-clock results are recorded, not asserted.
    timing = r["timing"]["per_variant"]
    assert all(timing[v]["update_seconds_median"] > 0 for v in timing)
    assert set(h["per_second_order_common_lr"]) == {"full", "stochastic", "minibatch"}


def test_losses(tmp_path):
    r = run_quick("losses", tmp_path)
    h = r["headline"]
    assert h["ce_faster_at_every_z0"]
    for z0, steps in h["steps_to_half_error"].items():
        ce, mse = steps["cross_entropy"], steps["mse"]
        assert ce is not None, z0
        assert mse is None or mse > 3 * ce, z0
    # The MSE gradient is the cross-entropy gradient times σ'(z0) (the 1-input neuron).
    for e in r["saturation"]:
        assert e["initial_grad_ratio_mse_over_ce"] == pytest.approx(
            e["sigmoid_prime_z0"], rel=1e-3
        )
    assert set(h["digits_test_accuracy"]) == {
        "cross_entropy",
        "mse",
        "mse_sigmoid",
        "hinge",
    }
    assert h["digits_test_accuracy"]["cross_entropy"] > 0.85
