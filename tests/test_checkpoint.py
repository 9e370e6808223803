"""Checkpoints: bit-exact round trips, atomic saves, no pickle, and resume after SIGKILL."""

import json
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import _train_script
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest

import jaxbp
from jaxbp import checkpoint, data, optim
from jaxbp.checkpoint import CheckpointError
from jaxbp.train import fit

HERE = Path(__file__).parent


def assert_trees_bit_equal(a, b):
    """Same structure and every leaf bit for bit (keys compared by their data)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)

    def bits(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(leaf)), "key"
        array = np.asarray(leaf)
        return array.view(f"u{array.dtype.itemsize}"), array.dtype

    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        (bx, tx), (by, ty) = bits(x), bits(y)
        assert tx == ty
        np.testing.assert_array_equal(bx, by)


def assert_same_history(a, b):
    # JSON text compares NaN/None/inf exactly and floats by their repr (bit for bit)
    assert json.dumps(a) == json.dumps(b)


@pytest.fixture(scope="module")
def tree():
    model = jaxbp.mlp([3, 5, 2])
    params = model.init(jax.random.key(1))
    params = jax.tree.map(
        lambda p: (
            p + 0.1 * jnp.sin(jnp.arange(p.size)).reshape(p.shape).astype(p.dtype)
        ),
        params,
    )
    jaxbp_adam, optax_adam = optim.adam(1e-3), optax.adam(1e-3)
    grads = jax.tree.map(jnp.cos, params)
    s1 = jaxbp_adam.update(grads, jaxbp_adam.init(params), params)[1]
    s2 = optax_adam.update(grads, optax_adam.init(params), params)[1]
    return {
        "params": params,
        "jaxbp_adam": s1,
        "optax_adam": s2,
        "optax_sgd": optax.sgd(0.1, momentum=0.9).init(params),
        "key": jax.random.fold_in(jax.random.key(7), 3),
        "raw_key": jax.random.PRNGKey(5),
        "f64": np.array([np.pi, -0.0, np.inf, np.nan], np.float64),
        "bf16": jnp.asarray([1.5, -2.25], jnp.bfloat16),
        "count": jnp.asarray(7, jnp.int32),
        "flag": np.bool_(True),
    }


def zeros_like(tree):
    """A template: same structure, shapes and dtypes, different values."""

    def zero(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return jnp.zeros_like(leaf)

    return jax.tree.map(zero, tree)


HISTORY = [
    {"epoch": 1, "train_loss": 0.1 + 0.2, "val_loss": None, "val_accuracy": None},
    {"epoch": 2, "train_loss": math.nan, "val_loss": math.inf, "val_accuracy": 1 / 3},
]


def test_round_trip_is_bit_exact(tmp_path, tree):
    path = checkpoint.save(tmp_path, 3, tree, {"history": HISTORY, "epoch": 3})
    assert (
        path == checkpoint.latest(tmp_path) == checkpoint.checkpoint_path(tmp_path, 3)
    )
    restored, meta = checkpoint.load(path, zeros_like(tree))
    assert_trees_bit_equal(restored, tree)
    assert type(restored["jaxbp_adam"][0]) is type(tree["jaxbp_adam"][0])
    assert type(restored["optax_adam"][0]) is optax.ScaleByAdamState
    assert restored["bf16"].dtype == ml_dtypes.bfloat16
    assert meta["epoch"] == 3
    assert_same_history(meta["history"], HISTORY)
    # the restored key draws the same numbers
    np.testing.assert_array_equal(
        jax.random.normal(restored["key"], (4,)), jax.random.normal(tree["key"], (4,))
    )


def test_template_mismatch_is_a_clear_error(tmp_path, tree):
    path = checkpoint.save(tmp_path, 1, tree)
    other = dict(tree, params=jaxbp.mlp([3, 6, 2]).init(jax.random.key(0)))
    with pytest.raises(
        CheckpointError, match=r"leaf \['params'\]\[0\]\['b'\]: expected shape \(6,\)"
    ):
        checkpoint.load(path, other)
    fewer = {k: v for k, v in tree.items() if k != "optax_sgd"}
    with pytest.raises(CheckpointError, match="another model or optimizer"):
        checkpoint.load(path, fewer)


def test_keeps_only_the_newest(tmp_path, tree):
    for step in range(1, 6):
        checkpoint.save(tmp_path, step, tree, keep=2)
    assert [s for s, _ in checkpoint.all_checkpoints(tmp_path)] == [4, 5]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ckpt-00000004.npz",
        "ckpt-00000005.npz",
    ]


def test_crash_mid_save_keeps_the_previous_checkpoint(tmp_path, tree, monkeypatch):
    checkpoint.save(tmp_path, 1, tree, {"epoch": 1})
    real_write = checkpoint._write_npz

    def write_half_then_crash(file, arrays):
        real_write(file, arrays)
        file.seek(0)
        file.truncate(file.tell() // 2 or 10)
        raise KeyboardInterrupt("simulated crash mid-save")

    monkeypatch.setattr(checkpoint, "_write_npz", write_half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path, 2, tree, {"epoch": 2})
    monkeypatch.undo()
    # no half-written checkpoint under a final name, no temporary left behind
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000001.npz"]
    restored, meta = checkpoint.load(checkpoint.latest(tmp_path), zeros_like(tree))
    assert meta == {"epoch": 1}
    assert_trees_bit_equal(restored, tree)


def test_leftover_temporary_file_is_ignored_and_cleaned(tmp_path, tree):
    checkpoint.save(tmp_path, 1, tree)
    # what a save killed by SIGKILL leaves: a partial temporary file
    stale = tmp_path / ".ckpt-tmp-killed.npz"
    stale.write_bytes(b"PK\x03\x04 half an archive")
    assert checkpoint.latest(tmp_path).name == "ckpt-00000001.npz"
    checkpoint.save(tmp_path, 2, tree)
    assert not stale.exists()
    assert checkpoint.latest(tmp_path).name == "ckpt-00000002.npz"


def test_background_saver_writes_the_newest_request(tmp_path, tree):
    saver = checkpoint.BackgroundSaver(tmp_path, keep=2)
    for step in range(1, 21):
        saver.request(step, tree, {"step": step, "history": HISTORY})
    path = saver.flush()
    assert (
        path == checkpoint.latest(tmp_path) == checkpoint.checkpoint_path(tmp_path, 20)
    )
    restored, meta = checkpoint.load(path, zeros_like(tree))
    assert_trees_bit_equal(restored, tree)
    assert meta["step"] == 20
    assert_same_history(meta["history"], HISTORY)
    saver.request(21, tree)
    assert saver.close() == checkpoint.checkpoint_path(tmp_path, 21)
    assert len(checkpoint.all_checkpoints(tmp_path)) <= 2


def test_background_saver_reports_a_failed_save(tmp_path, tree, monkeypatch):
    saver = checkpoint.BackgroundSaver(tmp_path)
    saver.request(1, tree)
    saver.flush()

    def disk_full(file, arrays):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write_npz", disk_full)
    saver.request(2, tree)
    with pytest.raises(OSError, match="No space left"):
        saver.flush()
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt-00000001.npz"]
    saver.request(3, tree)
    assert saver.close().name == "ckpt-00000003.npz"


class _Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_loading_never_unpickles(tmp_path, tree):
    path = checkpoint.save(tmp_path, 1, tree)
    marker = tmp_path / "code-was-executed"
    # 1. the checkpoint file replaced by a pickle
    path.write_bytes(pickle.dumps({"params": _Exploit(marker)}))
    with pytest.raises(CheckpointError, match="not a jaxbp checkpoint"):
        checkpoint.load(path, zeros_like(tree))
    # 2. an .npz archive whose members are pickled object arrays
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array([_Exploit(marker)], dtype=object))
    with pytest.raises(CheckpointError, match="allow_pickle"):
        checkpoint.load(path, zeros_like(tree))
    # 3. a raw .npy holding a pickle
    with open(path, "wb") as f:
        np.save(f, np.array([_Exploit(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError):
        checkpoint.load(path, zeros_like(tree))
    assert not marker.exists()


def test_corrupt_or_foreign_files_are_rejected(tmp_path, tree):
    path = checkpoint.save(tmp_path, 1, tree)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match=str(path.name)):
        checkpoint.load(path, zeros_like(tree))
    with open(path, "wb") as f:
        np.savez(f, __meta__=np.array(json.dumps({"format": "something else"})))
    with pytest.raises(CheckpointError, match="not a jaxbp checkpoint"):
        checkpoint.load(path, zeros_like(tree))
    with pytest.raises(CheckpointError, match="cannot read"):
        checkpoint.load(tmp_path / "missing.npz", zeros_like(tree))


# ---------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def run():
    return _train_script.config()


@pytest.fixture(scope="module")
def finished(run, tmp_path_factory):
    """The run, never interrupted, and the directory of its checkpoints."""
    model, train, val, kwargs = run
    directory = tmp_path_factory.mktemp("finished")
    return fit(model, train, val, checkpoint_dir=directory, **kwargs), directory


@pytest.fixture(scope="module")
def uninterrupted(finished):
    return finished[0]


def assert_same_result(got, want):
    assert_trees_bit_equal(got.params, want.params)
    assert_trees_bit_equal(got.opt_state, want.opt_state)
    assert_trees_bit_equal(got.state, want.state)
    assert_same_history(got.history, want.history)
    assert got.best_epoch == want.best_epoch
    assert got.stopped_early == want.stopped_early


class _Interrupt(Exception):
    pass


def test_resume_after_an_exception_is_bit_identical(run, uninterrupted, tmp_path):
    model, train, val, kwargs = run

    def stop_at_13(record):
        if record["epoch"] == 13:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, callback=stop_at_13, **kwargs)
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

    def stop_at_2(record):
        if record["epoch"] == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        fit(model, train, val, checkpoint_dir=tmp_path, callback=stop_at_2, **kwargs)
    got = fit(model, train, val, checkpoint_dir=tmp_path, resume=True, **kwargs)
    assert_same_result(got, want)


def test_resume_checks_the_settings(run, finished, tmp_path):
    model, train, val, kwargs = run
    shutil.copytree(finished[1], tmp_path, dirs_exist_ok=True)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        fit(model, train, val, checkpoint_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match="seed: checkpoint 3, now 4"):
        fit(
            model,
            train,
            val,
            checkpoint_dir=tmp_path,
            resume=True,
            **kwargs | {"seed": 4},
        )
    with pytest.raises(CheckpointError, match="another model or optimizer"):
        fit(
            model,
            train,
            val,
            checkpoint_dir=tmp_path,
            resume=True,
            **kwargs | {"optimizer": optim.sgd(0.1)},
        )


def test_resume_after_sigkill_is_bit_identical(run, uninterrupted, tmp_path):
    """A training process killed with SIGKILL mid-run, resumed in another."""
    model, train, val, kwargs = run
    epochs = kwargs["epochs"]
    command = [
        sys.executable,
        str(HERE / "_train_script.py"),
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
