"""Interrupts lose nothing: SIGINT and SIGTERM stop ``jaxbp train`` after the
running epoch, with metrics.json, curves.png and (with --checkpoint-dir) a
checkpoint written, one line saying how to resume, exit 128 + the signal."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from cli_testing import FAST, jaxbp

from jaxbp import checkpoint, train

#: Long enough that a signal arrives mid-run; digits, a small hidden layer.
LONG = [
    *("--dataset", "digits", "--hidden", "32", "--epochs", "300"),
    *("--quiet", "--seed", "3"),
]


def _interrupted_metrics(out, epochs):
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["interrupted"] is True
    done = metrics["epochs_run"]
    assert 1 <= done < epochs
    assert [r["epoch"] for r in metrics["history"]] == list(range(1, done + 1))
    assert (out / "curves.png").stat().st_size > 0
    return metrics


def test_sigint_in_process_writes_what_was_done(run_main, monkeypatch, tmp_path):
    real_fit = train.fit

    def fit_signalling_at_epoch_2(*args, callback, **kwargs):
        def on_epoch(record):
            if record["epoch"] == 2:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C
            if callback is not None:
                callback(record)

        return real_fit(*args, callback=on_epoch, **kwargs)

    monkeypatch.setattr(train, "fit", fit_signalling_at_epoch_2)
    out = tmp_path / "out"
    flags = [*FAST, "--epochs", "50"]
    result = run_main("train", *flags, "--out", str(out))
    assert result.returncode == 130, result.stderr
    metrics = _interrupted_metrics(out, 50)
    assert metrics["test_accuracy"] is None
    last = result.stderr.strip().splitlines()[-1]
    assert f"interrupted after epoch {metrics['epochs_run']} of 50" in last
    assert "no --checkpoint-dir" in last
    assert "Traceback" not in result.stderr
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(
    "signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_a_signal_stops_with_files_checkpoint_and_resume_command(
    tmp_path, signum, status
):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    command = [sys.executable, "-m", "jaxbp", "train", *LONG, "--out", str(out)]
    command += ["--checkpoint-dir", str(ckpt)]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline:
        if ckpt.is_dir() and checkpoint.latest(ckpt) is not None:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before the signal"
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert "Traceback" not in stderr
    metrics = _interrupted_metrics(out, 300)
    done = metrics["epochs_run"]
    assert checkpoint.latest(ckpt) == checkpoint.checkpoint_path(ckpt, done)
    last = stderr.strip().splitlines()[-1]
    assert f"interrupted after epoch {done} of 300" in last
    resume = shlex.split(last.split("resume with: ", 1)[1])
    assert resume[:2] == ["jaxbp", "train"] and resume[-1] == "--resume"
    # the printed command continues the run (here, stopped at once by --epochs)
    again = jaxbp(*resume[1:], "--epochs", str(done + 1))
    assert again.returncode == 0, again.stderr
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["interrupted"] is False
    assert resumed["history"][:done] == metrics["history"]
    assert len(resumed["history"]) == done + 1
