"""Helpers of the command-line tests: run ``jaxbp`` as a user does."""

import json
import os
import socket
import subprocess
import sys

#: A few seconds of training: blobs, one small hidden layer, 5 epochs.
FAST = [
    *("--dataset", "blobs", "--hidden", "16", "--epochs", "5", "--quiet"),
    *("--dropout", "0", "--input-dropout", "0", "--lr", "0.01"),
]


def jaxbp(*args, cwd=None, timeout=240, env=None):
    """``python -m jaxbp ARGS`` in a subprocess (CPU only)."""
    return subprocess.run(
        [sys.executable, "-m", "jaxbp", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})},
    )


def assert_one_line_error(result, *fragments, status=2):
    """Exit ``status``, one line on stderr holding every fragment, no traceback."""
    assert result.returncode == status, (
        result.returncode,
        result.stdout,
        result.stderr,
    )
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def histories(path):
    """The per-epoch records of ``path/metrics.json``, without timings."""
    return [
        {k: r[k] for k in ("epoch", "train_loss", "val_loss", "val_accuracy")}
        for r in json.loads((path / "metrics.json").read_text())["history"]
    ]


def free_port() -> int:
    """A TCP port on localhost that nothing listens on (for a job's coordinator)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def jaxbp_together(*argvs, cwd=None, timeout=300, env=None):
    """Each ``argv`` as ``python -m jaxbp ARGV``, all started at once (as a
    shell runs ``A & B``); their CompletedProcesses, in order."""
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxbp", *argv],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for argv in argvs
    ]
    done = []
    try:
        for argv, proc in zip(argvs, procs):
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(argv, proc.returncode, out, err))
    finally:
        for proc in procs:
            proc.kill()
    return done
