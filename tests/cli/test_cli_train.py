"""``jaxbp train``: the files it writes, switches that must not change the
history, resume after SIGKILL, data parallelism, the presets."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from cli_testing import FAST, histories, jaxbp

from jaxbp import checkpoint, cli, train
from jaxbp.cli import parsing
from jaxbp.cli import train as train_command
from jaxbp.cli.errors import UsageError


def test_train_writes_metrics_and_curves(tmp_path):
    result = jaxbp("train", *FAST, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "best_epoch", "config", "history"):
        assert key in metrics
    assert len(metrics["history"]) == 5
    for record in metrics["history"]:
        assert {"epoch", "train_loss", "val_loss", "val_accuracy"} <= set(record)
    assert metrics["test_accuracy"] > 0.9  # blobs are linearly separable
    assert metrics["config"]["dataset"] == "blobs"
    assert metrics["config"]["l2"] == 0.0
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "test accuracy" in result.stdout
    # a fresh process compiles fit's programs: reported, and counted
    assert metrics["compile_seconds"] > 0 and 1 <= metrics["compiled_programs"] <= 6
    assert f"compiling {metrics['compile_seconds']:.1f}s" in result.stdout


@pytest.mark.parametrize(
    "flag_a, flag_b",
    [
        (["--backprop", "manual"], ["--backprop", "autodiff"]),
        (["--impl", "jaxbp"], ["--impl", "optax"]),
    ],
)
def test_switches_give_the_same_history(tmp_path, flag_a, flag_b):
    runs = []
    for i, flags in enumerate((flag_a, flag_b)):
        out = tmp_path / str(i)
        result = jaxbp("train", *FAST, *flags, "--out", str(out))
        assert result.returncode == 0, result.stderr
        runs.append(histories(out))
    for a, b in zip(*runs):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-7), (key, a, b)


def test_l2_is_fits_coupled_penalty(run_main, monkeypatch, tmp_path):
    """--l2 reaches fit as l2= with any optimizer, and changes the training."""
    calls = []
    real_fit = train.fit

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(train, "fit", spy)
    for l2 in ("0", "0.5"):
        out = tmp_path / l2
        flags = ("--optimizer", "sgd", "--l2", l2, "--out", str(out))
        assert run_main("train", *FAST, *flags).returncode == 0
    assert [c["l2"] for c in calls] == [0.0, 0.5]
    plain, penalized = histories(tmp_path / "0"), histories(tmp_path / "0.5")
    assert penalized[-1]["train_loss"] != plain[-1]["train_loss"]


def test_resume_after_sigkill_gives_the_same_result(tmp_path):
    flags = [
        *("--dataset", "digits", "--hidden", "32", "--epochs", "40"),
        *("--quiet", "--seed", "3"),
    ]
    reference = tmp_path / "reference"
    assert jaxbp("train", *flags, "--out", str(reference)).returncode == 0

    ckpt = tmp_path / "ckpt"
    out = tmp_path / "resumed"
    command = [sys.executable, "-m", "jaxbp", "train", *flags, "--out", str(out)]
    command += ["--checkpoint-dir", str(ckpt)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if checkpoint.latest(ckpt) is not None:  # not just flags.json
                time.sleep(0.3)  # let a few more epochs run
                break
            time.sleep(0.05)
        killed = process.poll() is None
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    result = jaxbp(
        "train", *flags, "--out", str(out), "--checkpoint-dir", str(ckpt), "--resume"
    )
    assert result.returncode == 0, result.stderr
    if killed:
        assert process.returncode == -signal.SIGKILL
    got, want = (
        json.loads((out / "metrics.json").read_text()),
        json.loads((reference / "metrics.json").read_text()),
    )
    assert got["history"] == want["history"]  # bit for bit
    assert got["test_accuracy"] == want["test_accuracy"]
    assert got["test_loss"] == want["test_loss"]


def test_devices_flag_matches_one_device(tmp_path):
    env_flags = " ".join(
        [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=2"]
    )
    runs = []
    for devices in ("1", "2"):
        out = tmp_path / devices
        result = jaxbp(
            "train",
            *FAST,
            *("--batch-size", "32", "--devices", devices, "--out", str(out)),
            env={"XLA_FLAGS": env_flags},
        )
        assert result.returncode == 0, result.stderr
        runs.append(histories(out))
    for a, b in zip(*runs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


def parsed_train(*flags):
    args = cli.build_parser().parse_args(["train", *flags])
    parsing.apply_presets(args)
    train_command.resolve_optimizer_presets(args)
    return args


@pytest.mark.parametrize(
    ("flags", "optimizer", "weight_decay"),
    [
        ((), "adam", 0.0),
        (("--optimizer", "adamw"), "adamw", 0.0),
        (("--model", "cnn"), "adamw", 1.0),  # the CNN's preset: AdamW, decay 1
        (("--model", "cnn", "--weight-decay", "0.1"), "adamw", 0.1),
        # the preset's decay goes with its optimizer: none under adam
        (("--model", "cnn", "--optimizer", "adam"), "adam", 0.0),
        (("--model", "cnn", "--optimizer", "sgd", "--l2", "1e-4"), "sgd", 0.0),
        (("--dataset", "text", "--model", "gpt"), "adamw", 0.1),
        (("--dataset", "text", "--model", "gpt", "--optimizer", "adam"), "adam", 0.0),
    ],
)
def test_presets_pick_optimizer_and_weight_decay(flags, optimizer, weight_decay):
    args = parsed_train(*flags)
    assert (args.optimizer, args.weight_decay) == (optimizer, weight_decay)
    assert args.l2 == (1e-4 if "--l2" in flags else 0.0)
    gradcheck = cli.build_parser().parse_args(["gradcheck", "--model", "cnn"])
    parsing.apply_presets(gradcheck)  # no training flags: nothing to resolve
    assert not hasattr(gradcheck, "optimizer") and gradcheck.hidden == (128,)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "rmsprop"])
def test_weight_decay_is_for_adamw_only(optimizer):
    with pytest.raises(UsageError, match="--weight-decay"):
        parsed_train("--optimizer", optimizer, "--weight-decay", "0.01")


def test_readme_spirals_example_reaches_95_percent(tmp_path):
    flags = [
        *("--dataset", "spirals", "--hidden", "64,64", "--activation", "tanh"),
        *("--optimizer", "momentum", "--lr", "0.05"),
    ]
    result = jaxbp("train", *flags, "--quiet", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["dropout"] == metrics["config"]["input_dropout"] == 0
    assert metrics["test_accuracy"] >= 0.95


def test_evaluation_runs_in_batches(run_main, monkeypatch, tmp_path):
    calls = {"fit": [], "evaluate": []}
    real_fit, real_evaluate = train.fit, train.evaluate

    def fit_spy(*args, **kwargs):
        calls["fit"].append(kwargs["eval_batch_size"])
        return real_fit(*args, **kwargs)

    def evaluate_spy(*args, **kwargs):
        calls["evaluate"].append(kwargs["batch_size"])
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(train, "fit", fit_spy)
    monkeypatch.setattr(train, "evaluate", evaluate_spy)
    runs = {"default": [], "7": ["--eval-batch-size", "7"], "full": []}
    runs["full"] = ["--eval-batch-size", "full"]
    for name, flags in runs.items():
        out = ["--out", str(tmp_path / name)]
        assert run_main("train", *FAST, *flags, *out).returncode == 0
    assert calls == {"fit": [1000, 7, None], "evaluate": [1000, 7, None]}
    metrics = [
        json.loads((tmp_path / name / "metrics.json").read_text()) for name in runs
    ]
    for m in metrics[1:]:  # the same numbers up to rounding
        assert m["test_accuracy"] == metrics[0]["test_accuracy"]
        assert m["test_loss"] == pytest.approx(metrics[0]["test_loss"], rel=1e-5)


@pytest.mark.parametrize(
    ("flags", "beta2", "matrices_only"),
    [
        ((), None, False),
        (("--dataset", "text", "--model", "gpt"), 0.99, True),
        (("--dataset", "text", "--model", "gpt", "--optimizer", "adam"), None, False),
        (("--dataset", "text", "--model", "gpt", "--beta2", "0.95"), 0.95, True),
        (("--optimizer", "adamw", "--beta2", "0.9"), 0.9, False),
    ],
)
def test_presets_pick_beta2_and_the_decay_mask(flags, beta2, matrices_only):
    args = parsed_train(*flags)
    assert (args.beta2, args.decay_matrices_only) == (beta2, matrices_only)
