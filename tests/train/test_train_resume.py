"""Resume: a run interrupted (by an exception or SIGKILL) and resumed ends bit for
bit where the uninterrupted run ends; other settings are refused."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import _resume_run
import jax
import numpy as np
import pytest
from train_asserts import assert_same_history

import jaxbp
from jaxbp import checkpoint, data, optim
from jaxbp.checkpoint import CheckpointError
from jaxbp.train import fit

HERE = Path(__file__).parent


def assert_trees_bit_equal(a, b):
    """Same structure and every leaf bit for bit."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(
            x.view(f"u{x.dtype.itemsize}"), y.view(f"u{y.dtype.itemsize}")
        )


def assert_same_result(got, want):
    assert_trees_bit_equal(got.params, want.params)
    assert_trees_bit_equal(got.opt_state, want.opt_state)
    assert_trees_bit_equal(got.state, want.state)
    assert_same_history(got.history, want.history)
    assert got.best_epoch == want.best_epoch
    assert got.stopped_early == want.stopped_early


@pytest.fixture(scope="module")
def run():
    return _resume_run.config()


@pytest.fixture(scope="module")
def finished(run, tmp_path_factory):
    """The run, never interrupted, and the directory of its checkpoints."""
    model, train, val, kwargs = run
    directory = tmp_path_factory.mktemp("finished")
    return fit(model, train, val, checkpoint_dir=directory, **kwargs), directory


@pytest.fixture(scope="module")
def uninterrupted(finished):
    return finished[0]


class _Interrupt(Exception):
    pass


def stop_at(epoch):
    def callback(record):
        if record["epoch"] == epoch:
            raise _Interrupt

    return callback


def test_resume_after_an_exception_is_bit_identical(run, uninterrupted, tmp_path):
    model, train, val, kwargs = run
    with pytest.raises(_Interrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, callback=stop_at(13), **kwargs)
    assert checkpoint.latest(tmp_path).name == "ckpt-00000013.npz"
    resumed = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(resumed, uninterrupted)
    # resuming a finished run changes nothing
    again = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(again, uninterrupted)


def test_resume_with_early_stopping_is_bit_identical(tmp_path):
    dataset = data.load("blobs", n=120, seed=2)
    train = dataset.train
    # validation labels shifted: fitting the training set makes them worse
    val = (train.x, (train.y + 1) % 3)
    model = jaxbp.mlp([2, 8, 3])
    kwargs = {"optimizer": optim.sgd(0.1), "batch_size": 8, "epochs": 50, "patience": 3}
    want = fit(model, train, val, **kwargs)
    assert want.stopped_early
    with pytest.raises(_Interrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, callback=stop_at(2), **kwargs)
    got = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(got, want)


def test_resume_checks_the_settings(run, finished, tmp_path):
    model, train, val, kwargs = run
    shutil.copytree(finished[1], tmp_path, dirs_exist_ok=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit(model, train, val, checkpoint_dir=tmp_path, **kwargs)
    changes = [
        (ValueError, "seed: checkpoint 3, now 4", {"seed": 4}),
        (ValueError, "l2: checkpoint 0.001, now 0.002", {"l2": 2e-3}),
        (CheckpointError, "another model or optimizer", {"optimizer": optim.sgd(0.1)}),
    ]
    for error, message, change in changes:
        with pytest.raises(error, match=message):
            fit(
                model,
                train,
                val,
                checkpoint_dir=tmp_path,
                resume=True,
                **kwargs | change,
            )


def rename_setting(path, old, new):
    """Rewrite a checkpoint's stored settings as an older jaxbp wrote them."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["__meta__"]))
    config = meta["metadata"]["config"]
    config[old] = config.pop(new)
    arrays["__meta__"] = np.array(json.dumps(meta, allow_nan=True))
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_checkpoint_with_the_old_name_of_l2_resumes(run, uninterrupted, tmp_path):
    """Checkpoints written before l2 was renamed store it as weight_decay."""
    model, train, val, kwargs = run
    with pytest.raises(_Interrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, callback=stop_at(5), **kwargs)
    rename_setting(checkpoint.latest(tmp_path), "weight_decay", "l2")
    resumed = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(resumed, uninterrupted)


def test_resume_after_sigkill_is_bit_identical(run, uninterrupted, tmp_path):
    """A training process killed with SIGKILL mid-run, resumed in another."""
    model, train, val, kwargs = run
    epochs = kwargs["epochs"]
    command = [
        sys.executable,
        str(HERE / "_resume_run.py"),
        str(tmp_path),
        "--sleep",
        "0.1",
        *(["--x64"] if jax.config.jax_enable_x64 else []),
    ]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            steps = [s for s, _ in checkpoint.all_checkpoints(tmp_path)]
            if steps and max(steps) >= 3:
                break
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"training process ended early: {out!r} {err[-2000:]!r}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint for epoch 3 within 60 s")
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    steps = [s for s, _ in checkpoint.all_checkpoints(tmp_path)]
    assert 3 <= max(steps) < epochs  # killed mid-run
    resumed = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert len(resumed.history) == epochs
    assert_same_result(resumed, uninterrupted)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous(
    run, uninterrupted, tmp_path
):
    from jaxbp.train.resume import CheckpointFallbackWarning

    model, train, val, kwargs = run
    epochs = kwargs["epochs"]
    with pytest.raises(_Interrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, callback=stop_at(4), **kwargs)
    with pytest.raises(_Interrupt):  # the last request is always written: 4, then 5
        fit(
            model,
            train,
            val,
            checkpoint_dir=tmp_path,
            resume=True,
            callback=stop_at(5),
            **kwargs,
        )
    steps = [step for step, _ in checkpoint.all_checkpoints(tmp_path)]
    assert steps == [4, 5]
    newest = checkpoint.latest(tmp_path)
    newest.write_bytes(b"garbage")
    with pytest.warns(CheckpointFallbackWarning, match=newest.name):
        resumed = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(resumed, uninterrupted)
    assert len(resumed.history) == epochs


def test_should_stop_ends_after_the_epoch_with_its_checkpoint(
    run, uninterrupted, tmp_path
):
    model, train, val, kwargs = run
    asked = []

    def stop_after_3():
        asked.append(True)
        return len(asked) == 3

    stopped = fit(
        model, train, val, checkpoint_dir=tmp_path, should_stop=stop_after_3, **kwargs
    )
    assert len(stopped.history) == 3
    assert checkpoint.latest(tmp_path) == checkpoint.checkpoint_path(tmp_path, 3)
    resumed = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(resumed, uninterrupted)
