"""Four experiments in quick mode, each asserting its headline claim on the JSON
it wrote: losses, regularization, backprop_cost and gradient_check."""

import math

import pytest


def test_losses_cross_entropy_escapes_saturation_faster(run_quick):
    r = run_quick("losses")
    h = r["headline"]
    assert h["ce_faster_at_every_z0"]
    for z0, steps in h["steps_to_half_error"].items():
        ce, mse = steps["cross_entropy"], steps["mse"]
        assert ce is not None, z0
        assert mse is None or mse > 3 * ce, z0
    # The MSE gradient is the cross-entropy gradient times σ'(z0) (one input, x = 1).
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


def test_regularization_shrinks_the_generalization_gap(run_quick):
    results = run_quick("regularization")
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


def test_backprop_cost_reverse_mode_is_cheap_finite_differences_are_not(run_quick):
    results = run_quick("backprop_cost")
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


def test_gradient_check_every_case_within_tolerance(run_quick):
    results = run_quick("gradient_check")
    tolerances = results["tolerances"]
    assert tolerances == {
        "autodiff_float64": 1e-10,
        "autodiff_float32": 1e-5,
        "fd_float64": 1e-6,
    }
    groups = {case["group"] for case in results["cases"]}
    assert groups == {"layer", "activation", "loss", "textbook form"}
    # the quick run keeps one case per family, the gated recurrences, the
    # token model (embedding → LSTM → dense, cross-entropy per position),
    # causal self-attention (fast and textbook) and a two-block GPT among them
    names = {case["case"] for case in results["cases"]}
    assert len(names) == len(results["cases"]) == 16
    for name in (
        "lstm (all states)",
        "gru (last state)",
        "embedding → lstm → dense",
        "causal_self_attention (textbook)",
        "gpt (2 blocks, tokens)",
    ):
        assert any(n.startswith(name) for n in names), name
    for case in results["cases"]:
        for key, tol in tolerances.items():
            assert case[key] <= tol, (case["case"], key, case[key])
    assert results["all_within_tolerance"]
    assert results["check_grads_cases"] >= 1 and results["check_grads_all_ok"]
