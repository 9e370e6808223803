"""The gradient experiments run in quick mode, write their outputs and show their
headline claims: gradient check, vanishing and exploding gradients, initialization."""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def run_quick(name, tmp_path):
    """Import experiments/NAME.py by path, run its quick mode into tmp_path and
    check the files it promises; return (results, json payload)."""
    spec = importlib.util.spec_from_file_location(
        f"experiment_{name}", EXPERIMENTS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--quick", "--out", str(tmp_path)])
    json_path, png_path = tmp_path / f"{name}.json", tmp_path / f"{name}.png"
    assert json_path.is_file() and png_path.is_file()
    assert 0 < png_path.stat().st_size < 150_000
    payload = json.loads(json_path.read_text())
    assert payload["experiment"] == name and payload["quick"] is True
    return results, payload


def test_gradient_check(tmp_path):
    results, payload = run_quick("gradient_check", tmp_path)
    tolerances = results["tolerances"]
    assert tolerances == {
        "autodiff_float64": 1e-10,
        "autodiff_float32": 1e-5,
        "fd_float64": 1e-6,
    }
    groups = {case["group"] for case in results["cases"]}
    assert groups == {"layer", "activation", "loss"}
    for case in results["cases"]:
        for key, tol in tolerances.items():
            assert case[key] <= tol, (case["case"], key, case[key])
    assert results["all_within_tolerance"]
    assert results["check_grads_cases"] >= 1 and results["check_grads_all_ok"]
    assert len(payload["cases"]) == len(results["cases"])


def test_vanishing_gradients(tmp_path):
    results, _ = run_quick("vanishing_gradients", tmp_path)
    head = results["headline"]
    # Nielsen's 4-hidden-layer sigmoid net: the first hidden layer learns
    # at least 10x slower than the last at initialization
    assert head["nielsen_first_over_last"] <= 0.1
    assert head["holds"]
    speed = np.asarray(results["init"]["nielsen|4"]["speed_mean"])
    assert np.all(np.diff(speed) > 0)  # slower at every step towards the input
    # ReLU with He init does not vanish like that
    assert results["init"]["relu he|4"]["first_over_last_speed"] > 0.3
    # the per-layer bookkeeping agrees with jaxbp.diagnostics.gradient_flow
    assert results["gradient_flow_crosscheck_max_rel"] < 1e-5
    training = results["training"]["nielsen"]
    loss = np.asarray(training["loss_mean"])
    assert loss[-1] < loss[0]


def test_exploding_gradients(tmp_path):
    results, _ = run_quick("exploding_gradients", tmp_path)
    growth = results["headline"]["growth_per_layer"]
    # twice He's scale doubles ||delta|| per ReLU layer; He's keeps it ~constant
    assert growth["relu σw=2√2 (2×He)"] > 1.5
    assert 0.8 < growth["relu σw=√2 (He)"] < 1.25
    assert growth["tanh σw=3"] > 1.1
    rnn = results["headline"]["rnn_growth_per_step"]
    assert rnn["3.0"] > 1.1 and rnn["0.5"] < 0.9
    clip = results["clipping"]
    unclipped = np.asarray(clip["unclipped_final"], np.float64)
    first = np.asarray(clip["clipped_first_epoch"], np.float64)
    clipped = np.asarray(clip["clipped_final"], np.float64)
    assert np.all(np.isfinite(clipped)) and np.all(clipped < first)
    assert np.all(~np.isfinite(unclipped) | (unclipped > first))
    assert results["headline"]["holds"]


def test_initialization(tmp_path):
    results, _ = run_quick("initialization", tmp_path)
    deep = results["deep_relu"]
    he, xavier = deep["he"]["final_loss_median"], deep["xavier"]["final_loss_median"]
    assert math.isfinite(he) and he < xavier - 0.1
    # Xavier's ReLU signal halves (in variance) per layer: ~2^-29 after 30 layers
    assert deep["xavier"]["act_var_last_over_first"] < 1e-6
    relu = results["variance"]["relu"]
    assert relu["he"]["act_var_max_over_min"] < 3
    assert relu["xavier"]["act_var_per_layer_factor"] == pytest.approx(0.5, abs=0.1)
    assert results["headline"]["holds"]
