"""sweep: N runs in one program equal the separate runs (fit over seeds, single
sweeps over learning rates and L2 strengths), with probes, custom schedules and
clear errors."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from train_asserts import history_values

import jaxbp
from jaxbp import backprop, optim
from jaxbp.train import (
    Schedule,
    TrainState,
    batch_schedule,
    fit,
    init_params,
    make_step,
    run_steps,
    sweep,
    train_keys,
)

SEEDS = [0, 1, 2]
EPOCHS = 4


@pytest.fixture(scope="module")
def model():
    return jaxbp.mlp([2, 16, 3], dropout=0.1)  # dropout: the step keys matter


def one_run(tree, i):
    """Run ``i`` of a tree with a leading run axis (a SweepResult without its
    eval_steps, which are shared)."""
    if hasattr(tree, "eval_steps"):
        tree = tree._replace(eval_steps=None)
    return jax.tree.map(lambda a: a[i], tree)


def test_init_params_are_fits_initial_parameters(model):
    params, state = init_params(model, SEEDS)
    for i, seed in enumerate(SEEDS):
        want, want_state = model.init_with_state(train_keys(jax.random.key(seed))[0])
        chex.assert_trees_all_equal(one_run(params, i), want)
        chex.assert_trees_all_equal(state, want_state)


def test_a_sweep_over_seeds_equals_fit_per_seed(model, blobs):
    settings = {"optimizer": optim.adam(0.01), "batch_size": 16, "epochs": EPOCHS}
    params, state = init_params(model, SEEDS)
    runs = sweep(
        model,
        blobs.train,
        blobs.val,
        params=params,
        state=state,
        seeds=SEEDS,
        **settings,
    )
    steps_per_epoch = blobs.train.x.shape[0] // 16
    assert runs.train_loss.shape == (3, EPOCHS * steps_per_epoch)
    assert runs.val_loss.shape == runs.val_accuracy.shape == (3, EPOCHS)
    np.testing.assert_array_equal(
        runs.eval_steps, steps_per_epoch * np.arange(1, EPOCHS + 1)
    )
    assert runs.probes is None
    for i, seed in enumerate(SEEDS):
        fitted = fit(model, blobs.train, blobs.val, seed=seed, **settings)
        epoch_means = np.asarray(runs.train_loss[i]).reshape(EPOCHS, -1).mean(axis=1)
        for key, got in [
            ("train_loss", epoch_means),
            ("val_loss", runs.val_loss[i]),
            ("val_accuracy", runs.val_accuracy[i]),
        ]:
            want = history_values(fitted.history, key)
            np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=key)
        chex.assert_trees_all_close(
            one_run(runs.params, i), fitted.params, rtol=1e-5, atol=1e-6
        )
        chex.assert_trees_all_close(
            one_run(runs.opt_state, i), fitted.opt_state, rtol=1e-5, atol=1e-6
        )
    # the seeds differ
    assert not np.allclose(runs.train_loss[0], runs.train_loss[1])


def test_learning_rates_as_hyperparams_equal_single_sweeps(model, blobs):
    lrs = jnp.asarray([0.01, 0.1, 0.5], jnp.float32)
    params, state = init_params(model, [0, 0, 0])
    common = {"state": state, "seeds": 0, "batch_size": 32, "epochs": 3}
    runs = sweep(
        model,
        blobs.train,
        blobs.val,
        optimizer=optim.sgd,
        hyperparams=lrs,
        params=params,
        **common,
    )
    for i, lr in enumerate([0.01, 0.1, 0.5]):
        alone = sweep(
            model,
            blobs.train,
            blobs.val,
            optimizer=optim.sgd(lr),
            params=init_params(model, [0])[0],
            **common,
        )
        chex.assert_trees_all_close(
            one_run(runs, i), one_run(alone, 0), rtol=1e-5, atol=1e-6
        )
    assert not np.allclose(runs.train_loss[0], runs.train_loss[2])


def test_a_pytree_of_hyperparams(model, blobs):
    hyper = {"lr": jnp.asarray([0.01, 0.02]), "momentum": jnp.asarray([0.0, 0.9])}
    params, state = init_params(model, [0, 0])
    runs = sweep(
        model,
        blobs.train,
        optimizer=lambda h: optim.sgd(h["lr"], momentum=h["momentum"]),
        hyperparams=hyper,
        params=params,
        state=state,
        seeds=[0, 0],
    )
    alone = sweep(
        model,
        blobs.train,
        optimizer=optim.sgd(0.02, momentum=0.9),
        params=init_params(model, [0])[0],
        seeds=0,
    )
    np.testing.assert_allclose(runs.train_loss[1], alone.train_loss[0], rtol=1e-5)
    # without val: NaN metrics
    assert np.all(np.isnan(runs.val_loss)) and np.all(np.isnan(runs.initial.val_loss))


def test_per_run_l2_equals_single_runs(blobs):
    model = jaxbp.mlp([2, 16, 3])
    strengths = [0.0, 0.01, 0.1]
    params, state = init_params(model, [4, 4, 4])
    common = {"optimizer": optim.sgd(0.1), "seeds": 4, "epochs": 2, "state": state}
    runs = sweep(model, blobs.train, params=params, l2=jnp.asarray(strengths), **common)
    single = init_params(model, [4])[0]
    for i, lam in enumerate(strengths):
        alone = sweep(model, blobs.train, params=single, l2=lam, **common)
        np.testing.assert_allclose(runs.train_loss[i], alone.train_loss[0], rtol=1e-5)
        chex.assert_trees_all_close(
            one_run(runs.params, i), one_run(alone.params, 0), rtol=1e-5, atol=1e-6
        )
    # the penalty is in the reported loss and shrinks the weights
    assert runs.train_loss[2, 0] > runs.train_loss[0, 0]
    norms = [float(jnp.sum(runs.params[0]["w"][i] ** 2)) for i in range(3)]
    assert norms[2] < norms[1] < norms[0]


def weight_norm_probe(model, params, state):
    return {"w0": jnp.sqrt(jnp.sum(params[0]["w"] ** 2)), "bias": params[-1]["b"]}


def test_a_probe_is_recorded_at_step_0_and_every_evaluation(model, blobs):
    params, state = init_params(model, [0, 1])
    runs = sweep(
        model,
        blobs.train,
        blobs.val,
        optimizer=optim.adam(0.01),
        params=params,
        state=state,
        seeds=[0, 1],
        epochs=2,
        eval_every=3,
        probe=weight_norm_probe,
    )
    steps = 2 * (blobs.train.x.shape[0] // 32)
    np.testing.assert_array_equal(runs.eval_steps, np.arange(3, steps + 1, 3))
    assert runs.probes["w0"].shape == (2, steps // 3)
    assert runs.probes["bias"].shape == (2, steps // 3, 3)
    assert runs.initial.probes["w0"].shape == (2,)
    for i in range(2):
        first = weight_norm_probe(model, one_run(params, i), state)
        last = weight_norm_probe(model, one_run(runs.params, i), state)
        chex.assert_trees_all_close(one_run(runs.initial.probes, i), first, rtol=1e-6)
        chex.assert_trees_all_close(
            jax.tree.map(lambda a: a[-1], one_run(runs.probes, i)), last, rtol=1e-6
        )
    assert runs.initial.val_loss.shape == (2,)
    assert np.all(np.diff(np.asarray(runs.probes["w0"][0])) != 0)  # it moves


def test_a_given_schedule_is_followed(blobs):
    """Indices only from the first 40 examples, keys of our own, 2 runs with
    their own indices: each run equals run_steps of the step on them."""
    model = jaxbp.mlp([2, 8, 3], dropout=0.2)
    rng = np.random.default_rng(0)
    indices = jnp.asarray(rng.integers(0, 40, size=(2, 6, 5)), jnp.int32)
    keys = jax.random.split(jax.random.key(9), 6)
    params, state = init_params(model, [0, 1])
    tx = optim.adam(0.01)
    runs = sweep(
        model,
        blobs.train,
        optimizer=tx,
        params=params,
        state=state,
        schedule=Schedule(indices, keys),
        eval_every=6,
    )
    np.testing.assert_array_equal(runs.eval_steps, [6])
    x, t, _, _ = backprop.prepare(model, None, *blobs.train, "cross_entropy", state)
    step = make_step(model, optimizer=tx)
    for i in range(2):
        start = TrainState(one_run(params, i), state, tx.init(one_run(params, i)))
        want, losses = jax.jit(run_steps, static_argnums=0)(
            step, start, x, t, indices[i], keys
        )
        np.testing.assert_allclose(runs.train_loss[i], losses, rtol=1e-5)
        chex.assert_trees_all_close(
            one_run(runs.params, i), want.params, rtol=1e-5, atol=1e-6
        )
    # the seeds' schedule given explicitly is the seeds' sweep
    by_seed = sweep(model, blobs.train, optimizer=tx, params=params, seeds=[0, 1])
    n = blobs.train.x.shape[0]
    schedules = [batch_schedule(s, n, 32, 1) for s in (0, 1)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *schedules)
    given = sweep(model, blobs.train, optimizer=tx, params=params, schedule=stacked)
    chex.assert_trees_all_equal(given.train_loss, by_seed.train_loss)


def test_bad_sweep_arguments_are_value_errors(model, blobs):
    params, _ = init_params(model, [0, 1])
    n = blobs.train.x.shape[0]
    good = {"optimizer": optim.sgd(0.1), "params": params, "seeds": [0, 1]}
    schedule = batch_schedule(0, n, 32, 1)
    steps = schedule.indices.shape[0]
    wrong_params = init_params(jaxbp.mlp([2, 8, 3]), [0, 1])[0]
    cases = [
        ({"params": params[0]}, "params must be"),
        ({"params": wrong_params}, "params must be"),
        ({"params": model.init(jax.random.key(0))}, "params must be"),  # unstacked
        ({"seeds": [0, 1, 2]}, "seeds has 3 runs; params has 2"),
        ({"seeds": None}, "needs seeds"),
        ({"seeds": [0, -1]}, "seeds"),
        ({"schedule": schedule}, "seeds or schedule, not both"),
        ({"seeds": None, "schedule": (schedule.indices + n, schedule.keys)}, "[0, "),
        ({"seeds": None, "schedule": (schedule.indices[None], schedule.keys)}, "runs"),
        (
            {"seeds": None, "schedule": (schedule.indices, schedule.keys[1:])},
            "keys",
        ),
        (
            {"seeds": None, "schedule": (schedule.indices, np.zeros((steps, 2)))},
            "PRNG keys",
        ),
        ({"seeds": None, "schedule": schedule.indices}, "schedule must be"),
        ({"eval_every": 4}, "eval_every must divide"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"hyperparams": jnp.ones(2)}, "optimizer must be a function"),
        ({"optimizer": optim.sgd, "hyperparams": jnp.ones(3)}, "run axis of 2"),
        ({"optimizer": optim.sgd, "hyperparams": [0.1, 0.2]}, "run axis of 2"),
        ({"optimizer": optim.sgd}, "GradientTransformation"),
        ({"l2": jnp.ones(3)}, "l2 must be"),
        ({"l2": jnp.asarray([0.1, -1.0])}, "l2 must be"),
        ({"l2": -0.5}, "l2 must be"),
        ({"state": (jnp.ones(3),)}, "state must"),
        ({"probe": 3}, "probe"),
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
        ({"backprop": "numeric"}, "manual, autodiff"),
    ]
    assert steps % 4  # the eval_every case does not divide
    for kwargs, fragment in cases:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            sweep(model, blobs.train, **(good | kwargs))
    with pytest.raises(ValueError, match="seeds must hold at least one"):
        init_params(model, [])
