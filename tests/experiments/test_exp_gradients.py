"""The gradient experiments in quick mode: vanishing and exploding gradients,
initialization and batch norm; each asserts its script's headline claim."""

import math

import numpy as np
import pytest


def test_vanishing_gradients(run_quick):
    results = run_quick("vanishing_gradients")
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
    # the speed recorded before the first step is the speed at init
    speed_train = np.asarray(training["speed_mean"])
    np.testing.assert_allclose(speed_train[0], speed, rtol=1e-4)


def test_exploding_gradients(run_quick):
    results = run_quick("exploding_gradients")
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


def test_initialization(run_quick):
    results = run_quick("initialization")
    deep = results["deep_relu"]
    he, xavier = deep["he"]["final_loss_median"], deep["xavier"]["final_loss_median"]
    assert math.isfinite(he) and he < xavier - 0.1
    # Xavier's ReLU signal halves (in variance) per layer: ~2^-29 after 30 layers
    assert deep["xavier"]["act_var_last_over_first"] < 1e-6
    relu = results["variance"]["relu"]
    assert relu["he"]["act_var_max_over_min"] < 3
    assert relu["xavier"]["act_var_per_layer_factor"] == pytest.approx(0.5, abs=0.1)
    assert results["headline"]["holds"]


def test_batchnorm(run_quick):
    results = run_quick("batchnorm")
    at_step = results["headline"]["test_accuracy_at_step"]
    with_bn, without_bn = at_step["with BN"], at_step["without BN"]
    # After 105 steps (5 epochs) the batch-norm net is ahead.
    assert with_bn["105"] > without_bn["105"]
    steps_to_90 = results["headline"]["steps_to_0.90"]
    assert steps_to_90["with BN"] is not None
    assert steps_to_90["without BN"] is None or (
        steps_to_90["with BN"] < steps_to_90["without BN"]
    )
