"""Training: fit learns, optimizers and gradient backends agree, L2 and clipping are
right, early stopping restores the best epoch, vmapped runs equal separate runs,
runs are deterministic, and divergence stops with a clear error."""

import json
import os
import re
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_rel_close

import jaxbp
from jaxbp import backprop, checkpoint, data, optim, regularization
from jaxbp.train import (
    TrainingDiverged,
    TrainState,
    evaluate,
    fit,
    make_optimizer,
    make_step,
    make_train_fn,
)


@pytest.fixture(scope="module")
def blobs():
    return data.load("blobs", n=300, seed=0)


@pytest.fixture(scope="module")
def xor():
    return data.load("xor", n=400, seed=0)


def history_values(history, key):
    return np.array([r[key] for r in history], np.float64)


def assert_histories_close(a, b, rtol):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            history_values(a, key), history_values(b, key), rtol=rtol, err_msg=key
        )


def assert_bit_identical(a, b):
    chex.assert_trees_all_equal(a.params, b.params)
    chex.assert_trees_all_equal(a.opt_state, b.opt_state)
    assert json.dumps(a.history) == json.dumps(b.history)


# ---------------------------------------------------------------- learning


@pytest.mark.parametrize(
    "batch_size, epochs, lr",
    [(None, 150, 0.05), (1, 4, 0.005), (16, 25, 0.01)],
    ids=["full-batch", "stochastic", "mini-batch"],
)
def test_fit_learns_xor(xor, batch_size, epochs, lr):
    model = jaxbp.mlp([2, 16, 2], "tanh")
    records = []
    result = fit(
        model,
        xor.train,
        xor.val,
        optimizer=optim.adam(lr),
        batch_size=batch_size,
        epochs=epochs,
        callback=records.append,
    )
    assert records == result.history
    assert [r["epoch"] for r in result.history] == list(range(1, epochs + 1))
    losses = history_values(result.history, "train_loss")
    assert losses[-1] < 0.5 * losses[0]
    assert result.history[-1]["val_accuracy"] >= 0.9
    _, test_accuracy = evaluate(
        model, result.params, result.state, *xor.test, loss="cross_entropy"
    )
    assert test_accuracy >= 0.9  # a linear model gets at most ~0.75
    assert not result.stopped_early
    assert result.best_epoch == 1 + int(
        np.argmin(history_values(result.history, "val_loss"))
    )


def test_history_without_validation_and_for_regression():
    dataset = data.load("sine", n=200)
    model = jaxbp.mlp([1, 16, 1], "tanh")
    result = fit(model, dataset.train, loss="mse", optimizer=optim.adam(0.01), epochs=3)
    assert all(
        r["val_loss"] is None and r["val_accuracy"] is None for r in result.history
    )
    assert result.best_epoch == 3
    with_val = fit(
        model,
        dataset.train,
        dataset.val,
        loss="mse",
        optimizer=optim.adam(0.01),
        epochs=3,
    )
    assert all(r["val_accuracy"] is None for r in with_val.history)
    assert all(np.isfinite(r["val_loss"]) for r in with_val.history)
    _, accuracy = evaluate(
        model, result.params, result.state, *dataset.test, loss="mse"
    )
    assert accuracy is None


# ---------------------------------------------------------------- implementations agree


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
        ("adam", {"learning_rate": 0.01}),
    ],
)
def test_jaxbp_optim_and_optax_give_the_same_history(blobs, name, kwargs):
    # Both libraries compute the same float32 operations in the same order, so
    # the runs agree to rounding (in practice bit for bit); 1e-6 relative
    # leaves room for a reordered sum.
    model = jaxbp.mlp([2, 16, 3])
    runs = [
        fit(
            model,
            blobs.train,
            blobs.val,
            optimizer=getattr(lib, name)(**kwargs),
            batch_size=16,
            epochs=6,
            clip_norm=1.0,
            weight_decay=1e-3,
        )
        for lib in (optim, optax)
    ]
    assert_histories_close(runs[0].history, runs[1].history, rtol=1e-6)
    assert_trees_rel_close(runs[0].params, runs[1].params, rtol=1e-6)


def test_manual_and_autodiff_give_the_same_history():
    dataset = data.load("digits", n=300)
    model = jaxbp.mlp([64, 32, 16, 10], "tanh")
    runs = [
        fit(
            model,
            dataset.train,
            dataset.val,
            optimizer=optim.sgd(0.1, momentum=0.9),
            batch_size=32,
            epochs=8,
            backprop=mode,
        )
        for mode in ("manual", "autodiff")
    ]
    # float32 gradients agree to ~1e-6 relative per step; 8 epochs of
    # momentum SGD (64 steps) stay within 1e-5.
    assert_histories_close(runs[0].history, runs[1].history, rtol=1e-5)
    assert_trees_rel_close(runs[0].params, runs[1].params, rtol=1e-5)
    # and it learns the digits
    loss, accuracy = evaluate(
        model, runs[0].params, runs[0].state, *dataset.test, loss="cross_entropy"
    )
    assert accuracy >= 0.9
    assert loss < 0.2 * runs[0].history[0]["train_loss"]


# ---------------------------------------------------------------- the step: L2 and clipping


@pytest.fixture(scope="module")
def problem64():
    model = jaxbp.mlp([4, 6, 3], "tanh", dtype=jnp.float64)
    params, state = model.init_with_state(jax.random.key(0))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(10, 4)), jnp.float64)
    y = jnp.asarray(rng.integers(0, 3, 10), jnp.int32)
    x, target, _, state = backprop.prepare(model, params, x, y, "cross_entropy", state)
    return model, params, state, x, y, target


def one_sgd_step(model, params, state, x, target, clip_norm=None, **kwargs):
    """(loss, gradient) the step used, recovered from one SGD step with lr 1."""
    tx = make_optimizer(optim.sgd(1.0), clip_norm=clip_norm)
    step = make_step(model, "cross_entropy", tx, **kwargs)
    train_state = TrainState(params, state, tx.init(params))
    new, value = jax.jit(step)(train_state, x, target, None)
    grads = jax.tree.map(lambda p, q: p - q, params, new.params)
    return value, grads


def test_weight_decay_can_be_vmapped(problem64):
    """L2 strengths as a traced array: one vmapped step per strength equals the
    steps built with each strength as a Python number."""
    model, params, state, x, _, target = problem64
    lams = jnp.array([0.0, 0.3, 1.0])
    vmapped = jax.vmap(
        lambda lam: one_sgd_step(model, params, state, x, target, weight_decay=lam)
    )(lams)
    for i, lam in enumerate([0.0, 0.3, 1.0]):
        want = one_sgd_step(model, params, state, x, target, weight_decay=lam)
        got = jax.tree.map(lambda a, i=i: a[i], vmapped)
        assert_trees_rel_close(got, want, rtol=1e-12)
    assert not np.allclose(vmapped[0][0], vmapped[0][1])  # the penalty is there


def test_weight_decay_is_the_gradient_of_the_l2_penalty(problem64):
    model, params, state, x, y, target = problem64
    lam = 0.3
    value, grads = one_sgd_step(model, params, state, x, target, weight_decay=lam)

    def objective(p):
        data_loss = jaxbp.loss(model, p, x, y, loss="cross_entropy")
        weights = [p[0]["w"], p[2]["w"]]  # the two dense kernels, not the biases
        return data_loss + 0.5 * lam * sum(jnp.sum(w**2) for w in weights)

    want_value, want_grads = jax.jit(jax.value_and_grad(objective))(params)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    assert_trees_rel_close(grads, want_grads, rtol=1e-10)
    # biases are not decayed: their gradient is the data loss's alone
    _, plain = one_sgd_step(model, params, state, x, target)
    np.testing.assert_allclose(grads[0]["b"], plain[0]["b"], rtol=1e-12)
    assert not np.allclose(grads[0]["w"], plain[0]["w"])
    assert regularization.l2_mask(params) == (
        {"b": False, "w": True},
        (),
        {"b": False, "w": True},
    )


def test_clipping_caps_the_global_norm_and_keeps_the_direction(problem64):
    model, params, state, x, _, target = problem64
    _, plain = one_sgd_step(model, params, state, x, target)
    norm = float(optim.global_norm(plain))
    _, clipped = one_sgd_step(model, params, state, x, target, clip_norm=norm / 4)
    np.testing.assert_allclose(optim.global_norm(clipped), norm / 4, rtol=1e-12)
    assert_trees_rel_close(clipped, jax.tree.map(lambda g: g / 4, plain), rtol=1e-12)
    _, unclipped = one_sgd_step(model, params, state, x, target, clip_norm=norm * 2)
    assert_trees_rel_close(unclipped, plain, rtol=1e-12)


def test_weight_decay_in_fit_shrinks_the_weights(blobs):
    model = jaxbp.mlp([2, 16, 3])
    kwargs = {"optimizer": optim.sgd(0.1), "batch_size": 16, "epochs": 10}
    plain = fit(model, blobs.train, **kwargs)
    decayed = fit(model, blobs.train, weight_decay=0.05, **kwargs)

    def weight_norm(params):
        return float(sum(jnp.sum(p["w"] ** 2) for p in (params[0], params[2])))

    assert weight_norm(decayed.params) < 0.8 * weight_norm(plain.params)
    # the reported loss includes the penalty
    assert decayed.history[0]["train_loss"] > plain.history[0]["train_loss"]


# ---------------------------------------------------------------- early stopping


def test_early_stopping_restores_the_best_epoch(blobs):
    train = blobs.train
    # validation labels shifted by one class: fitting the training set makes
    # the validation loss worse, so the best epoch comes early.
    val = (train.x, (train.y + 1) % 3)
    model = jaxbp.mlp([2, 16, 3])
    kwargs = {"optimizer": optim.sgd(0.05), "batch_size": 16, "seed": 1}
    result = fit(model, train, val, epochs=100, patience=4, **kwargs)
    val_losses = history_values(result.history, "val_loss")
    best = 1 + int(np.argmin(val_losses))
    assert result.stopped_early
    assert result.best_epoch == best
    assert len(result.history) == best + 4  # stopped 4 epochs after the best
    assert val_losses[best:].min() >= val_losses[best - 1]
    # the parameters are those after the best epoch, bit for bit
    upto_best = fit(model, train, val, epochs=best, **kwargs)
    chex.assert_trees_all_equal(result.params, upto_best.params)
    chex.assert_trees_all_equal(result.opt_state, upto_best.opt_state)
    assert json.dumps(upto_best.history) == json.dumps(result.history[:best])


# ---------------------------------------------------------------- vmap


def test_vmap_over_seeds_and_learning_rates_equals_separate_runs(blobs):
    model = jaxbp.mlp([2, 16, 3])
    train_fn = make_train_fn(
        model,
        *blobs.train,
        optimizer_fn=optim.adam,
        batch_size=16,
        epochs=5,
        val=blobs.val,
    )
    keys = jnp.stack([jax.random.key(s) for s in (0, 1, 2)])
    lrs = jnp.asarray([0.003, 0.03], jnp.float32)
    grid = jax.jit(jax.vmap(jax.vmap(train_fn, (None, 0)), (0, None)))(keys, lrs)
    assert grid.train_loss.shape == (3, 2, 5)
    assert grid.val_accuracy.shape == (3, 2, 5)
    for i in range(3):
        for j in range(2):
            alone = train_fn(keys[i], lrs[j])
            got = jax.tree.map(lambda a, i=i, j=j: a[i, j], grid)
            # The same computation, but XLA compiles the batched program
            # (batched matmuls, other fusions) with other rounding: runs agree
            # to float32 rounding grown over 65 Adam steps, not bit for bit.
            chex.assert_trees_all_close(got, alone, rtol=1e-5, atol=1e-6)
    # the runs differ by seed and by learning rate
    assert not np.allclose(grid.train_loss[0, 0], grid.train_loss[1, 0])
    assert not np.allclose(grid.train_loss[0, 0], grid.train_loss[0, 1])
    # and a run of make_train_fn is fit's run with the same seed
    fitted = fit(
        model,
        blobs.train,
        blobs.val,
        optimizer=optim.adam(0.003),
        batch_size=16,
        epochs=5,
        seed=1,
    )
    np.testing.assert_allclose(
        grid.train_loss[1, 0], history_values(fitted.history, "train_loss"), rtol=1e-6
    )
    np.testing.assert_allclose(
        grid.val_loss[1, 0], history_values(fitted.history, "val_loss"), rtol=1e-6
    )
    chex.assert_trees_all_close(
        jax.tree.map(lambda a: a[1, 0], grid.params), fitted.params, rtol=1e-5
    )


# ---------------------------------------------------------------- determinism


def test_same_seed_is_bit_identical_other_seed_differs(blobs):
    # batch norm (state threaded through the steps) and dropout (a key per step)
    # (a fresh compilation in a fresh process: test_resume_after_sigkill...)
    net = jaxbp.mlp([2, 16, 16, 3], batchnorm=True, dropout=0.2)
    # SGD, not Adam: with batch norm after a dense layer, the dense bias has a
    # zero gradient up to rounding, which Adam would blow up to steps of size
    # lr (its direction set by rounding noise) and so amplify the tiny
    # manual/autodiff differences into the running means.
    kwargs = {
        "optimizer": optim.sgd(0.1, momentum=0.9),
        "batch_size": 8,
        "epochs": 3,
        "clip_norm": 1.0,
    }
    a = fit(net, blobs.train, blobs.val, seed=5, **kwargs)
    b = fit(net, blobs.train, blobs.val, seed=5, **kwargs)
    assert_bit_identical(a, b)
    chex.assert_trees_all_equal(a.state, b.state)
    d = fit(net, blobs.train, blobs.val, seed=6, **kwargs)
    assert not np.array_equal(a.params[0]["w"], d.params[0]["w"])
    assert a.history[0]["train_loss"] != d.history[0]["train_loss"]
    # the running statistics moved, and autodiff sees the same dropout masks
    assert not np.allclose(a.state[1]["mean"], net.init_state()[1]["mean"])
    e = fit(net, blobs.train, blobs.val, seed=5, backprop="autodiff", **kwargs)
    assert_histories_close(a.history, e.history, rtol=1e-5)


# ---------------------------------------------------------------- divergence


def test_non_finite_loss_names_epoch_and_step_and_keeps_last_checkpoint(tmp_path):
    dataset = data.load("sine", n=140)  # 100 training examples: 10 steps of 10
    model = jaxbp.mlp([1, 16, 1], "tanh")

    def schedule(count):  # fine for two epochs, then a step that overflows
        return jnp.where(count < 20, 0.01, 1e30)

    with pytest.raises(TrainingDiverged, match=r"epoch 3, step 2\b") as info:
        fit(
            model,
            dataset.train,
            dataset.val,
            loss="mse",
            optimizer=optim.sgd(schedule),
            batch_size=10,
            epochs=10,
            checkpoint_dir=tmp_path,
        )
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.epoch, error.step) == (3, 2)
    assert not np.isfinite(error.loss)
    assert [r["epoch"] for r in error.history] == [1, 2]
    assert all(r["val_accuracy"] is None for r in error.history)  # mse
    assert "ckpt-00000002.npz" in str(error)
    # the last good checkpoint is there, and nothing was written for epoch 3
    # (epoch 1's may have been skipped: saves that wait are coalesced)
    assert [s for s, _ in checkpoint.all_checkpoints(tmp_path)][-1] == 2
    assert error.checkpoint == checkpoint.latest(tmp_path)
    meta = checkpoint.read_metadata(error.checkpoint)["metadata"]
    assert meta["epoch"] == 2
    assert json.dumps(meta["history"]) == json.dumps(error.history)


# ---------------------------------------------------------------- evaluate


def test_evaluate_accuracy_rules():
    model = jaxbp.mlp([2, 1])
    params = ({"w": jnp.asarray([[1.0], [0.0]], jnp.float32), "b": jnp.zeros(1)},)
    x = jnp.asarray([[2.0, 0.0], [-1.0, 5.0], [0.5, 0.0], [-3.0, 0.0]], jnp.float32)
    y = jnp.asarray([1, 1, 0, 0])  # predictions by sign: 1, 0, 1, 0
    for loss in ("binary_cross_entropy", "hinge"):
        _, accuracy = evaluate(model, params, None, x, y, loss=loss)
        assert accuracy == 0.5
    multi = jaxbp.mlp([2, 3])
    p3 = ({"w": jnp.eye(2, 3, dtype=jnp.float32), "b": jnp.zeros(3, jnp.float32)},)
    labels = jnp.asarray([0, 1, 0, 2])  # argmax: 0, 1, 0, 2 (row 4: [-3, 0, 0])
    _, accuracy = evaluate(multi, p3, None, x, labels, loss="cross_entropy")
    assert accuracy == 0.75
    loss_all, acc_all = evaluate(multi, p3, None, x, labels, loss="hinge")
    loss_chunks, acc_chunks = evaluate(
        multi, p3, None, x, labels, loss="hinge", batch_size=3
    )
    assert acc_all == acc_chunks
    np.testing.assert_allclose(loss_all, loss_chunks, rtol=1e-6)
    assert isinstance(loss_all, float)


# ---------------------------------------------------------------- arguments


def test_bad_arguments_are_value_errors(blobs, tmp_path):
    model = jaxbp.mlp([2, 4, 3])
    opt = optim.sgd(0.1)
    n = blobs.train.x.shape[0]
    cases = [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": n + 1}, f"at most the training set size {n}"),
        ({"epochs": 0}, "epochs"),
        ({"backprop": "numeric"}, "manual, autodiff"),
        ({"loss": "l1"}, "loss"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"clip_norm": 0.0}, "clip_norm"),
        ({"patience": 3}, "validation set"),
        ({"resume": True}, "checkpoint_dir"),
        ({"seed": -1}, "seed"),
        ({"optimizer": "adam"}, "GradientTransformation"),
        ({"devices": len(jax.devices()) + 1}, "devices"),
    ]
    for kwargs, fragment in cases:
        kwargs = {"optimizer": opt, **kwargs}
        with pytest.raises(ValueError, match=re.escape(fragment)):
            fit(model, blobs.train, **kwargs)
    with pytest.raises(ValueError, match="cross_entropy labels"):
        fit(model, (blobs.train.x, blobs.train.y + 3), optimizer=opt)


def test_data_parallel_over_two_devices_matches_one():
    """devices=2 (two CPU devices forced in a fresh process) gives one device's run."""
    script = textwrap.dedent(
        """
        import json, jax, numpy as np, jaxbp
        from jaxbp import data, optim
        from jaxbp.train import fit
        assert len(jax.devices()) == 2
        ds = data.load("blobs", n=200)
        model = jaxbp.mlp([2, 16, 3])
        runs = [fit(model, ds.train, ds.val, optimizer=optim.adam(0.01), batch_size=16,
                    epochs=3, devices=d) for d in (1, 2)]
        print(json.dumps([[r["train_loss"] for r in run.history] for run in runs]))
        """
    )
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
        + " --xla_force_host_platform_device_count=2",
    }
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    one, two = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(two, one, rtol=1e-5)
