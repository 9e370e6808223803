"""Multi-process training (``jaxbp.train.distributed``): argument checks in
process, and real two-process jobs on localhost (``_distributed_run.py``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxbp.train import distributed, parallel

ROOT = Path(__file__).resolve().parents[2]
RUN = Path(__file__).with_name("_distributed_run.py")
#: No test waits longer than this for a process (a hang fails the test).
TIMEOUT = 120


# ---------------------------------------------------------------- in process


def test_nothing_set_is_a_single_process_run():
    assert distributed.job_settings(environ={}) is None
    assert distributed.initialize() is None or jax.process_count() == 1


def test_one_process_is_a_single_process_run():
    assert distributed.job_settings("localhost:1234", 1, 0, environ={}) is None


def test_settings_from_arguments_and_environment():
    environ = {"JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    job = distributed.job_settings("10.0.0.1:1234", environ=environ)
    assert job == distributed.Job("10.0.0.1:1234", 4, 3)
    # arguments override the environment
    assert distributed.job_settings("[::1]:80", 2, 0, environ=environ).process_id == 0


@pytest.mark.parametrize(
    ("arguments", "environ", "fragments"),
    [
        (("localhost:1234", None, None), {}, ["without num_processes and process_id"]),
        ((None, 2, 0), {}, ["without coordinator_address"]),
        (("localhost", 2, 0), {}, ["coordinator_address", "HOST:PORT", "'localhost'"]),
        (("localhost:0", 2, 0), {}, ["coordinator_address", "1..65535"]),
        (("host:99999", 2, 0), {}, ["coordinator_address"]),
        (("a b:12", 2, 0), {}, ["coordinator_address"]),
        (("localhost:1234", 2, 2), {}, ["process_id", "[0, 2)", "got 2"]),
        (("localhost:1234", 2, -1), {}, ["process_id", ">= 0"]),
        (("localhost:1234", 0, 0), {}, ["num_processes", ">= 1"]),
        (("localhost:1234", 2.0, 0), {}, ["num_processes", "integer"]),
        (("localhost:1234", True, 0), {}, ["num_processes", "integer"]),
        (
            ("localhost:1234", None, 0),
            {"JAX_NUM_PROCESSES": "two"},
            ["JAX_NUM_PROCESSES", "'two'"],
        ),
        (
            (None, 2, None),
            {"JAX_PROCESS_ID": "0"},
            ["num_processes and JAX_PROCESS_ID given without coordinator_address"],
        ),
    ],
)
def test_bad_settings_name_the_argument(arguments, environ, fragments):
    with pytest.raises(ValueError) as error:
        distributed.job_settings(*arguments, environ=environ)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_bad_timeout_is_a_value_error():
    with pytest.raises(ValueError, match="timeout"):
        distributed.initialize(timeout=0)


def test_single_process_helpers():
    assert distributed.is_main_process()
    assert not distributed.in_job()
    assert distributed.any_process(True) and not distributed.any_process(False)
    assert not distributed.is_collective_failure(ValueError("batch_size must be"))
    assert distributed.is_collective_failure(ValueError("UNKNOWN: Gloo all-reduce"))


def test_one_device_one_process_has_no_mesh():
    assert parallel.data_parallel(1) == (None, None)
    with pytest.raises(ValueError, match="available"):
        parallel.data_parallel(len(jax.devices()) + 1)


def test_the_mesh_takes_as_many_devices_from_each_process(monkeypatch):
    from types import SimpleNamespace

    fake = [
        SimpleNamespace(process_index=p, platform="cpu", id=i)
        for i, p in enumerate([0, 0, 1, 1])
    ]
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(jax, "devices", lambda: fake)
    assert [d.id for d in parallel.mesh_devices(2)] == [0, 2]
    assert [d.id for d in parallel.mesh_devices(4)] == [0, 1, 2, 3]
    for devices in (1, 3, 6):
        with pytest.raises(ValueError, match="multiple of 2 and at most 4"):
            parallel.mesh_devices(devices)


def test_local_copies_leave_local_arrays_alone():
    tree = {"a": jax.numpy.ones(3), "b": None, "c": 1.0}
    assert parallel.local_copies(tree) is not tree
    assert parallel.local_copies(tree)["a"] is tree["a"]


# ---------------------------------------------------------------- two processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def environment(**extra) -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": path,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def start(out, *args, env=None, process_id=None, logs=None):
    """One process of the runner; output to ``logs/<id>.txt``."""
    log = open(Path(logs or out) / f"log-{process_id}.txt", "w")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, str(RUN), str(out), *map(str, args)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env or environment(),
    )


def start_job(out, *args, processes=2):
    """The runner as a job of ``processes`` processes on localhost."""
    address = f"localhost:{free_port()}"
    return [
        start(
            out,
            *("--address", address, "--num-processes", processes),
            *("--process-id", i, "--devices", processes, *args),
            process_id=i,
        )
        for i in range(processes)
    ]


def finish(procs, timeout=TIMEOUT) -> list[int]:
    """Every process's exit status; the ones still running after ``timeout``
    seconds are killed and the test fails."""
    deadline = time.monotonic() + timeout
    try:
        return [p.wait(max(deadline - time.monotonic(), 0.1)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def report(out, process_id=0) -> dict:
    return json.loads((Path(out) / f"history-{process_id}.json").read_text())


def log(out, process_id) -> str:
    return (Path(out) / f"log-{process_id}.txt").read_text()


def assert_same_history(got, want, tol=1e-5):
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for mine, theirs in zip(got, want, strict=True):
        for name in ("train_loss", "val_loss", "val_accuracy", "train_accuracy"):
            np.testing.assert_allclose(mine[name], theirs[name], rtol=tol, atol=tol)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The runner's 4 epochs in one process: ``{devices: report}`` for one
    device and two host devices."""
    flags = os.environ.get("XLA_FLAGS", "")
    env = environment(XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=2")
    reports = {}
    for devices in (1, 2):
        out = tmp_path_factory.mktemp(f"devices{devices}")
        proc = start(out, "--devices", devices, env=env, process_id=0)
        assert finish([proc]) == [0], log(out, 0)
        reports[devices] = report(out)
    return reports


def test_two_processes_train_as_one_process_and_resume(tmp_path, one_process):
    """Two processes (one device each) give the history of one process with
    two devices (and with one, up to the order of the sums); only process 0
    writes checkpoints; should_stop() on process 1 alone stops both after the
    same epoch; a resumed job reads the checkpoints and goes on."""
    ckpt = tmp_path / "ckpt"
    run = ("--epochs", 4, "--checkpoint-dir", ckpt)
    procs = start_job(tmp_path, *run, "--stop-after", 2)
    assert finish(procs) == [0, 0], (log(tmp_path, 0), log(tmp_path, 1))
    first = [report(tmp_path, i) for i in range(2)]
    assert [len(r["history"]) for r in first] == [2, 2]
    assert [r["wrote_checkpoints"] for r in first] == [True, False]
    assert sorted(p.name for p in ckpt.glob("ckpt-*")) == [
        "ckpt-00000001.npz",
        "ckpt-00000002.npz",
    ]
    want = one_process[2]
    assert_same_history(first[0]["history"], want["history"][:2])

    procs = start_job(tmp_path, *run, "--resume")
    assert finish(procs) == [0, 0], (log(tmp_path, 0), log(tmp_path, 1))
    for i in range(2):
        resumed = report(tmp_path, i)
        assert resumed["fully_addressable"]  # the result is this process's copy
        assert resumed["wrote_checkpoints"] == (i == 0)
        assert_same_history(resumed["history"], want["history"])
        np.testing.assert_allclose(resumed["params_sum"], want["params_sum"], 1e-5)
        assert_same_history(resumed["history"], one_process[1]["history"])
    assert (ckpt / "ckpt-00000004.npz").exists()


def test_a_killed_coordinator_ends_the_other(tmp_path):
    """SIGKILL process 0 (the coordinator) mid-training: process 1 ends at
    once (nonzero, no Python traceback, no hang), by whichever notices first:
    JAX's coordination client, or the collective process 1 was in (fit's
    JobFailed). (A killed process 1: fit raises JobFailed in process 0, whose
    one line tests/cli/test_cli_distributed.py checks.)"""
    procs = start_job(tmp_path, "--epochs", 200, "--sleep", 0.2)
    deadline = time.monotonic() + TIMEOUT
    while "epoch" not in _progress(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
        assert all(p.poll() is None for p in procs), log(tmp_path, 0)
    procs[0].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    status = finish([procs[1]], timeout=30)[0]
    finish(procs)
    text = log(tmp_path, 1)
    assert status != 0, text
    assert time.monotonic() - killed_at < 30
    assert "Traceback" not in text
    job_failed = "a collective with the other processes failed, most likely"
    assert "another task died" in text or job_failed in text, text


def _progress(out) -> str:
    path = Path(out) / "progress-0.txt"
    return path.read_text() if path.exists() else ""


def test_each_device_gathers_only_its_share_of_the_batch():
    """The compiled epoch over a two-device mesh (two host devices; a job's
    mesh over two processes compiles the same per-device program): every
    device gathers B/2 rows of each batch, one all-reduce per step (the
    gradients and the loss), no all-gather."""
    script = textwrap.dedent(
        """
        import re, jax, numpy as np, jaxbp
        from jaxbp import optim
        from jaxbp.train import make_epoch, make_step, TrainState
        from jaxbp.train.parallel import data_parallel
        model = jaxbp.mlp([64, 32, 10], "relu")
        batch_sharding, replicated = data_parallel(2)
        step = make_step(model, optimizer=optim.adam(1e-3),
                         batch_sharding=batch_sharding)
        epoch = make_epoch(step, 96, 32)
        params, state = model.init_with_state(jax.random.key(0))
        x = np.zeros((96, 64), np.float32)
        t = np.zeros((96, 10), np.float32)
        train_state = TrainState(params, state, optim.adam(1e-3).init(params))
        args = jax.device_put((train_state, x, t, jax.random.key(1)), replicated)
        text = jax.jit(epoch).lower(*args, np.uint32(1)).compile().as_text()
        ops = re.findall(r" (all-reduce|all-gather|gather)\\(", text)
        rows = re.findall(r"= f32\\[(\\d+),(?:1,)?(?:64|10)\\]\\S* gather\\(", text)
        print(sorted(ops), rows)
        """
    )
    flags = os.environ.get("XLA_FLAGS", "")
    env = environment(XLA_FLAGS=f"{flags} --xla_force_host_platform_device_count=2")
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ops, rows = out.stdout.strip().split("] [")
    assert ops == "['all-reduce', 'gather', 'gather'"
    assert rows == "'16', '16']"
