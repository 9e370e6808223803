"""``jaxbp train`` as a job of several processes (``jaxbp.cli.distributed``):
its flag checks, a two-process run on localhost, an unreachable coordinator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from cli_testing import FAST, assert_one_line_error, free_port, histories, jaxbp

from jaxbp.cli import main

JOB = ("--coordinator-address", "localhost:1234", "--num-processes", "2")


@pytest.mark.parametrize(
    ("flags", "environ", "fragments"),
    [
        (
            ["--coordinator-address", "localhost:1234"],
            {},
            ["--coordinator-address given without --num-processes and --process-id"],
        ),
        (["--num-processes", "2", "--process-id", "1"], {}, ["--coordinator-address"]),
        ([*JOB, "--process-id", "2"], {}, ["--process-id must be in [0, 2)", "got 2"]),
        (
            ["--coordinator-address", "nohost", "--num-processes", "2"],
            {"JAX_PROCESS_ID": "0"},
            ["--coordinator-address must be HOST:PORT", "'nohost'"],
        ),
        (list(JOB), {"JAX_PROCESS_ID": "first"}, ["JAX_PROCESS_ID", "'first'"]),
        (
            [],
            {"JAX_COORDINATOR_ADDRESS": "localhost:1234", "JAX_PROCESS_ID": "1"},
            [
                "JAX_COORDINATOR_ADDRESS and JAX_PROCESS_ID given without --num-processes"
            ],
        ),
    ],
)
def test_bad_job_flags_exit_2_naming_the_flag(
    flags, environ, fragments, tmp_path, monkeypatch, capsys
):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    status = main(["train", *FAST, "--out", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]
    assert not (tmp_path / "out").exists()


def test_devices_must_come_equally_from_each_process():
    from jaxbp.cli import UsageError, distributed
    from jaxbp.train.distributed import Job

    job = Job("localhost:1234", 2, 0)
    distributed.check_job_devices(4, job, local_devices=2)
    for devices in (3, 6):
        with pytest.raises(UsageError, match=f"--devices {devices}: .* multiple of 2"):
            distributed.check_job_devices(devices, job, local_devices=2)


@pytest.mark.parametrize("flag", ["--num-processes", "--process-id", "--join-timeout"])
def test_malformed_job_numbers_exit_2(flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", *FAST, flag, "-1"])
    assert exit_.value.code == 2
    assert flag in capsys.readouterr().err


def test_unreachable_coordinator_is_one_line_not_a_hang(tmp_path):
    started = time.monotonic()
    result = jaxbp(
        "train",
        *FAST,
        *("--out", str(tmp_path), "--coordinator-address", f"localhost:{free_port()}"),
        *("--num-processes", "2", "--process-id", "1", "--join-timeout", "1"),
        timeout=60,
    )
    assert_one_line_error(
        result, "process 1 of 2 could not join the job", "--join-timeout", status=4
    )
    assert time.monotonic() - started < 30


def test_two_processes_train_as_one_with_two_devices(tmp_path):
    """Process 0 by flags, process 1 by JAX_* variables: the history of one
    process with ``--devices 2``; only process 0 writes and prints."""
    run = [*FAST, "--batch-size", "16", "--checkpoint-dir", str(tmp_path / "ckpt")]
    address = f"localhost:{free_port()}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    job_env = {
        **env,
        "JAX_COORDINATOR_ADDRESS": address,
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": "1",
    }
    command = [sys.executable, "-m", "jaxbp", "train", *run]
    procs = [
        subprocess.Popen(
            [*command, "--out", str(tmp_path / f"out{i}"), *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        for i, flags, environ in (
            (0, ["--coordinator-address", address, *JOB[2:], "--process-id", "0"], env),
            (1, [], job_env),
        )
    ]
    try:
        outputs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "wrote" in outputs[0][0] and outputs[1][0] == ""
    assert sorted(p.name for p in (tmp_path / "out0").iterdir()) == [
        "curves.png",
        "metrics.json",
    ]
    assert not (tmp_path / "out1").exists()
    assert (tmp_path / "ckpt" / "ckpt-00000005.npz").exists()
    assert json.loads((tmp_path / "ckpt" / "flags.json").read_text())
    config = json.loads((tmp_path / "out0" / "metrics.json").read_text())["config"]
    assert (config["devices"], config["num_processes"]) == (2, 2)

    flags = os.environ.get("XLA_FLAGS", "")
    one = jaxbp(
        "train",
        *run[:-2],
        *("--devices", "2", "--out", str(tmp_path / "one")),
        env={"XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2"},
    )
    assert one.returncode == 0, one.stderr
    got, want = histories(tmp_path / "out0"), histories(tmp_path / "one")
    assert [r["epoch"] for r in got] == [r["epoch"] for r in want]
    for mine, theirs in zip(got, want, strict=True):
        for name in ("train_loss", "val_loss", "val_accuracy"):
            assert mine[name] == pytest.approx(theirs[name], rel=1e-5, abs=1e-5)


def test_a_killed_process_ends_the_other_with_one_line(tmp_path):
    """SIGKILL process 1 mid-training: process 0 exits 4 within the bound,
    with one line and no traceback (nothing hangs)."""
    ckpt = tmp_path / "ckpt"
    address = f"localhost:{free_port()}"
    command = [sys.executable, "-m", "jaxbp", "train", *FAST, "--epochs", "100000"]
    command += ["--checkpoint-dir", str(ckpt), "--coordinator-address", address]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    procs = [
        subprocess.Popen(
            [*command, "--num-processes", "2", "--process-id", str(i)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for i in range(2)
    ]
    try:
        deadline = time.monotonic() + 120
        while not list(ckpt.glob("ckpt-*")) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs)
            time.sleep(0.2)
        procs[1].kill()
        killed_at = time.monotonic()
        _, err = procs[0].communicate(timeout=30)
        seconds = time.monotonic() - killed_at
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert procs[0].returncode == 4, err
    assert seconds < 30
    lines = [line for line in err.splitlines() if not line.startswith("[Gloo]")]
    assert len(lines) == 1, err
    assert lines[0].startswith("jaxbp train: error: process 0 of 2: a collective")
    assert "most likely because another process died" in lines[0]
