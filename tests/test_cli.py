"""The command line, run as a user runs it: through subprocesses (the presets
are also checked in process, on the parsed flags)."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

FAST = [
    *("--dataset", "blobs", "--hidden", "16", "--epochs", "5", "--quiet"),
    *("--dropout", "0", "--input-dropout", "0", "--lr", "0.01"),
]


def jaxbp(*args, cwd=None, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "jaxbp", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--dataset", "cifar"], ["--dataset", "digits", "mnist", "spirals"]),
        (["--optimizer", "lbfgs"], ["--optimizer", "sgd", "adamw"]),
        (["--activation", "swish"], ["--activation", "relu", "silu"]),
        (["--loss", "l1"], ["--loss", "mse", "hinge"]),
        (["--init", "glorot"], ["--init", "xavier", "he"]),
        (["--impl", "torch"], ["--impl", "jaxbp", "optax"]),
        (["--backprop", "numeric"], ["--backprop", "manual", "autodiff"]),
        (["--lr", "0"], ["--lr", "> 0"]),
        (["--lr", "-1e-3"], ["--lr"]),
        (["--hidden", "128,0"], ["--hidden", "positive"]),
        (["--epochs", "0"], ["--epochs", ">= 1"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--batch-size", "100000"], ["--batch-size", "at most the training set size"]),
        (["--dropout", "1.5"], ["--dropout"]),
        (
            ["--dataset", "mnist", "--data-dir", "/nonexistent/mnist"],
            ["/nonexistent/mnist"],
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(flags, fragments, tmp_path):
    result = jaxbp("train", *flags, "--out", str(tmp_path), "--quiet")
    assert_one_line_error(result, *fragments)


def test_corrupt_idx_file_names_the_path(tmp_path):
    def write_idx(path, magic, dims, payload):
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
        path.write_bytes(header + payload)

    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte",
            0x803,
            (n, 28, 28),
            rng.integers(0, 256, n * 784, dtype=np.uint8).tobytes(),
        )
        write_idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte",
            0x801,
            (n,),
            rng.integers(0, 10, n, dtype=np.uint8).tobytes(),
        )
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])  # truncated
    result = jaxbp(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path),
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    )
    assert_one_line_error(result, str(bad))
    # gzipped garbage
    bad.unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08")[:-3]
    )
    result = jaxbp(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path),
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    )
    assert_one_line_error(result, "t10k-images-idx3-ubyte.gz")


def test_help_lists_subcommands():
    result = jaxbp("--help")
    assert result.returncode == 0
    for command in ("train", "gradcheck", "bench"):
        assert command in result.stdout


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
    png = (tmp_path / "curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert "test accuracy" in result.stdout


def histories(path):
    return [
        {k: r[k] for k in ("epoch", "train_loss", "val_loss", "val_accuracy")}
        for r in json.loads((path / "metrics.json").read_text())["history"]
    ]


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


def test_gradcheck_passes_and_prints_the_table():
    # no input dropout: with 2 input features it zeroes whole examples, putting
    # ReLU units exactly at their kink, where finite differences do not apply
    result = jaxbp(
        "gradcheck",
        "--dataset",
        "blobs",
        "--hidden",
        "8,8",
        "--batch",
        "8",
        "--input-dropout",
        "0",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "max|manual-fd|" in result.stdout and "all gradients agree" in result.stdout
    assert "0.dense/w" in result.stdout


GRADCHECK_MLP = ("--hidden", "16,16", "--batch", "8")
GRADCHECK_CNN = (
    "--model",
    "cnn",
    "--channels",
    "4,8",
    "--hidden",
    "16",
    "--batch",
    "8",
)


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param((*GRADCHECK_MLP, *bn, *drop, *res), id=" ".join(bn + drop + res))
        for bn in ((), ("--batchnorm",))
        for drop in (("--dropout", "0"), ("--dropout", "0.3"))
        for res in ((), ("--residual",))
    ]
    + [
        pytest.param((*GRADCHECK_CNN, *bn, *drop), id="cnn " + " ".join(bn + drop))
        for bn in (("--batchnorm",), ("--no-batchnorm",))
        for drop in (("--dropout", "0"), ("--dropout", "0.5"))
    ]
    # the CNN at its default widths (~150k parameters): against jax.grad only
    + [pytest.param(("--model", "cnn", "--no-finite-differences"), id="cnn default")],
)
def test_gradcheck_passes_for_every_layer_combination(flags):
    """Manual == jax.grad and == finite differences (float64) for the digits
    models with every combination of the layer flags, and for the CNN (with
    its conv widths narrowed so that finite differences take seconds; at its
    default widths against jax.grad)."""
    result = jaxbp("gradcheck", *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all gradients agree" in result.stdout, result.stdout
    rows = [line for line in result.stdout.splitlines() if line.endswith(" ok")]
    assert len(rows) >= 4, result.stdout  # every parameter leaf is checked
    if "--batchnorm" in flags:
        assert "batchnorm/gamma" in result.stdout
    if "cnn" in flags:
        assert "conv2d/w" in result.stdout


def test_channels_is_for_the_cnn_only():
    assert_one_line_error(
        jaxbp("gradcheck", "--channels", "4,8"), "--channels applies to --model cnn"
    )
    assert_one_line_error(
        jaxbp("gradcheck", "--model", "cnn", "--channels", "4,x"), "--channels"
    )


def test_resume_after_sigkill_gives_the_same_result(tmp_path):
    flags = [
        "--dataset",
        "digits",
        "--hidden",
        "32",
        "--epochs",
        "40",
        "--quiet",
        "--seed",
        "3",
    ]
    reference = tmp_path / "reference"
    assert jaxbp("train", *flags, "--out", str(reference)).returncode == 0

    ckpt = tmp_path / "ckpt"
    out = tmp_path / "resumed"
    command = [
        sys.executable,
        "-m",
        "jaxbp",
        "train",
        *flags,
        "--out",
        str(out),
        "--checkpoint-dir",
        str(ckpt),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if any(ckpt.glob("*")) and len(list(ckpt.iterdir())) >= 1:
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
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "jaxbp",
                "train",
                *FAST,
                "--batch-size",
                "32",
                "--devices",
                devices,
                "--out",
                str(out),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "XLA_FLAGS": env_flags, "JAX_PLATFORMS": "cpu"},
        )
        assert result.returncode == 0, result.stderr
        runs.append(histories(out))
    for a, b in zip(*runs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)


def test_devices_beyond_available_is_a_clear_error(tmp_path):
    result = jaxbp("train", *FAST, "--devices", "64", "--out", str(tmp_path))
    assert_one_line_error(result, "devices=64")


@pytest.mark.parametrize(
    ("flags", "optimizer", "weight_decay"),
    [
        ((), "adam", 0.0),
        (("--optimizer", "adamw"), "adamw", 0.0),
        (("--model", "cnn"), "adamw", 1.0),  # the CNN's preset: AdamW, decay 1
        (("--model", "cnn", "--weight-decay", "0.1"), "adamw", 0.1),
        # the preset's decay goes with its optimizer: no L2 of 1 under adam
        (("--model", "cnn", "--optimizer", "adam"), "adam", 0.0),
        (
            ("--model", "cnn", "--optimizer", "sgd", "--weight-decay", "1e-4"),
            "sgd",
            1e-4,
        ),
    ],
)
def test_presets_pick_optimizer_and_weight_decay(flags, optimizer, weight_decay):
    from jaxbp import cli

    args = cli.build_parser().parse_args(["train", *flags])
    cli.apply_presets(args)
    assert (args.optimizer, args.weight_decay) == (optimizer, weight_decay)
    gradcheck = cli.build_parser().parse_args(["gradcheck", "--model", "cnn"])
    cli.apply_presets(gradcheck)  # no training flags: nothing to resolve
    assert not hasattr(gradcheck, "optimizer") and gradcheck.hidden == (128,)
