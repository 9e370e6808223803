"""fit: it learns, optimizers and gradient backends agree, L2 shrinks the weights,
early stopping restores the best epoch, runs are deterministic, divergence stops
with a clear error, and bad arguments are ValueErrors."""

import json
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import assert_trees_rel_close
from train_asserts import assert_bit_identical, assert_histories_close, history_values

import jaxbp
from jaxbp import checkpoint, data, optim
from jaxbp.train import TrainingDiverged, evaluate, fit

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
        model, result.params, xor.test, state=result.state, loss="cross_entropy"
    )
    assert test_accuracy >= 0.9  # a linear model gets at most ~0.75
    assert not result.stopped_early
    assert result.best_epoch == 1 + int(
        np.argmin(history_values(result.history, "val_loss"))
    )


def test_history_without_validation_and_for_regression(sine):
    model = jaxbp.mlp([1, 16, 1], "tanh")
    result = fit(model, sine.train, loss="mse", optimizer=optim.adam(0.01), epochs=3)
    assert all(
        r["val_loss"] is None and r["val_accuracy"] is None for r in result.history
    )
    assert result.best_epoch == 3
    with_val = fit(
        model, sine.train, sine.val, loss="mse", optimizer=optim.adam(0.01), epochs=3
    )
    assert all(r["val_accuracy"] is None for r in with_val.history)
    assert all(np.isfinite(r["val_loss"]) for r in with_val.history)


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
            l2=1e-3,
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
        model, runs[0].params, dataset.test, state=runs[0].state, loss="cross_entropy"
    )
    assert accuracy >= 0.9
    assert loss < 0.2 * runs[0].history[0]["train_loss"]


# ---------------------------------------------------------------- L2


def test_l2_in_fit_shrinks_the_weights(blobs):
    model = jaxbp.mlp([2, 16, 3])
    kwargs = {"optimizer": optim.sgd(0.1), "batch_size": 16, "epochs": 10}
    plain = fit(model, blobs.train, **kwargs)
    penalised = fit(model, blobs.train, l2=0.05, **kwargs)

    def weight_norm(params):
        return float(sum(jnp.sum(p["w"] ** 2) for p in (params[0], params[2])))

    assert weight_norm(penalised.params) < 0.8 * weight_norm(plain.params)
    # the reported loss includes the penalty
    assert penalised.history[0]["train_loss"] > plain.history[0]["train_loss"]


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


# ---------------------------------------------------------------- determinism


def test_same_seed_is_bit_identical_other_seed_differs(blobs):
    # batch norm (state threaded through the steps) and dropout (a key per step)
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


class UnhashableAdam:
    """An optimizer object that cannot be hashed (``__eq__`` without
    ``__hash__``), as a user's own GradientTransformation may be."""

    def __init__(self, lr):
        self.init, self.update = optim.adam(lr)

    def __eq__(self, other):
        return self is other


def test_an_unhashable_optimizer_trains_as_a_hashable_one(blobs):
    net = jaxbp.mlp([2, 8, 3])
    kwargs = {"batch_size": 16, "epochs": 2, "seed": 1}
    a = fit(net, blobs.train, blobs.val, optimizer=optim.adam(0.01), **kwargs)
    b = fit(net, blobs.train, blobs.val, optimizer=UnhashableAdam(0.01), **kwargs)
    assert_bit_identical(a, b)


# ---------------------------------------------------------------- divergence


def test_non_finite_loss_names_epoch_and_step_and_keeps_last_checkpoint(sine, tmp_path):
    model = jaxbp.mlp([1, 16, 1], "tanh")  # 100 training examples: 10 steps of 10

    def schedule(count):  # fine for two epochs, then a step that overflows
        return jnp.where(count < 20, 0.01, 1e30)

    with pytest.raises(TrainingDiverged, match=r"epoch 3, step 2\b") as info:
        fit(
            model,
            sine.train,
            sine.val,
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
        ({"l2": -1.0}, "l2"),
        ({"l2": jnp.asarray(0.1)}, "l2"),  # fit's l2 is a number
        ({"clip_norm": 0.0}, "clip_norm"),
        ({"patience": 3}, "validation set"),
        ({"patience": 0}, "patience"),
        ({"resume": True}, "checkpoint_dir"),
        ({"seed": -1}, "seed"),
        ({"optimizer": "adam"}, "GradientTransformation"),
        ({"devices": len(jax.devices()) + 1}, "devices"),
        ({"keep_checkpoints": 0}, "keep_checkpoints"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"eval_batch_size": 0}, "eval_batch_size"),
    ]
    for kwargs, fragment in cases:
        kwargs = {"optimizer": opt, **kwargs}
        with pytest.raises(ValueError, match=re.escape(fragment)):
            fit(model, blobs.train, **kwargs)
    with pytest.raises(ValueError, match="cross_entropy labels"):
        fit(model, (blobs.train.x, blobs.train.y + 3), optimizer=opt)
    with pytest.raises(ValueError, match="train must be an"):
        fit(model, blobs.train.x, optimizer=opt)


def test_float32_numbers_are_recorded_as_float32_prints_them(blobs):
    """History and evaluate give the float32 value's shortest form (0.99999994),
    not its float64 widening (0.9999999403953552), so metrics.json reads cleanly;
    the value is unchanged in float32."""
    model = jaxbp.mlp([2, 8, 3])
    result = fit(model, blobs.train, blobs.val, optimizer=optim.adam(0.01), epochs=3)
    numbers = [v for r in result.history for v in r.values() if isinstance(v, float)]
    numbers += list(evaluate(model, result.params, blobs.test))
    assert len(numbers) == 4 * 3 + 2
    for value in numbers:
        assert repr(value) == str(np.float32(value)), value
        assert np.float32(value) == np.float32(float(np.float32(value)))
