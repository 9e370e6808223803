"""User mistakes: exit status 2, one line on stderr naming the flag as typed,
no traceback (as a user runs the command: through subprocesses; the flag
conflicts also in process, which is quicker)."""

import gzip
from pathlib import Path

import numpy as np
import pytest
from cli_testing import FAST, assert_one_line_error, jaxbp

from jaxbp import checkpoint


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
        (["--l2", "-1"], ["--l2", ">= 0"]),
        (["--seed", str(2**32)], ["--seed"]),
        (
            ["--dataset", "mnist", "--data-dir", "/nonexistent/mnist"],
            ["--data-dir", "/nonexistent/mnist"],
        ),
        (["--weight-decay", "0.1", "--optimizer", "adam"], ["--weight-decay", "adamw"]),
    ],
)
def test_bad_input_exits_2_with_one_line(flags, fragments, tmp_path):
    result = jaxbp("train", *flags, "--out", str(tmp_path), "--quiet")
    assert_one_line_error(result, *fragments)


@pytest.mark.parametrize(
    "flags, fragments",
    [
        # decoupled weight decay belongs to adamw; --l2 is the coupled penalty
        (["--weight-decay", "0.1", "--optimizer", "adam"], ["--weight-decay", "--l2"]),
        (
            ["--model", "cnn", "--optimizer", "sgd", "--weight-decay", "1e-4"],
            ["--weight-decay"],
        ),
        (["--model", "cnn", "--dataset", "spirals"], ["--model cnn", "spirals"]),
        (["--model", "cnn", "--residual"], ["--residual"]),
        (["--model", "cnn", "--input-dropout", "0.1"], ["--input-dropout"]),
        (["--init-std", "0.5"], ["--init-std", "--init normal"]),
        (
            ["--dataset", "sine", "--loss", "cross_entropy"],
            ["--loss cross_entropy", "sine"],
        ),
        (
            ["--loss", "binary_cross_entropy"],
            ["--loss binary_cross_entropy", "2 classes"],
        ),
        (["--dataset", "fashion_mnist"], ["--dataset fashion_mnist", "--data-dir"]),
        (["--data-dir", "/tmp"], ["--data-dir", "mnist", "--dataset digits"]),
        (
            ["--dataset", "spirals", "--data-dir", "/tmp"],
            ["--data-dir", "--dataset spirals"],
        ),
        (["--resume"], ["--resume", "--checkpoint-dir"]),
        (["--devices", "64"], ["--devices 64"]),
    ],
)
def test_contradicting_flags_exit_2_naming_the_flag(
    run_main, flags, fragments, tmp_path
):
    result = run_main("train", *flags, "--out", str(tmp_path), "--quiet")
    assert_one_line_error(result, *fragments)


def test_checkpoint_dir_with_checkpoints_needs_resume(run_main, tmp_path):
    checkpoint.save(tmp_path / "ckpt", 1, {"w": np.zeros(2)})
    result = run_main(
        "train",
        *FAST,
        "--out",
        str(tmp_path),
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
    )
    assert_one_line_error(result, "--checkpoint-dir", "--resume")
    (tmp_path / "file").write_text("")
    result = run_main("train", *FAST, "--checkpoint-dir", str(tmp_path / "file"))
    assert_one_line_error(result, "--checkpoint-dir", "not a directory")


def test_corrupt_checkpoint_names_the_flag(run_main, tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    checkpoint.checkpoint_path(ckpt, 3).write_bytes(b"not a zip archive")
    result = run_main(
        "train",
        *FAST,
        "--out",
        str(tmp_path),
        "--checkpoint-dir",
        str(ckpt),
        "--resume",
    )
    assert_one_line_error(result, "--checkpoint-dir", "ckpt-")


def test_resuming_with_other_settings_names_the_flag(run_main, tmp_path):
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    first = run_main("train", *FAST, "--epochs", "2", "--out", str(tmp_path), *ckpt)
    assert first.returncode == 0, first.stderr
    result = run_main(
        "train", *FAST, "--seed", "4", "--out", str(tmp_path), *ckpt, "--resume"
    )
    assert_one_line_error(result, "--resume", "other flags", "--seed 0", "now 4")


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
    flags = ["--dataset", "mnist", "--data-dir", str(tmp_path), "--quiet"]
    result = jaxbp("train", *flags, "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "--data-dir", str(bad))
    # gzipped garbage
    bad.unlink()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00\x08")[:-3]
    )
    result = jaxbp("train", *flags, "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "--data-dir", "t10k-images-idx3-ubyte.gz")


def test_channels_is_for_the_cnn_only():
    assert_one_line_error(
        jaxbp("gradcheck", "--channels", "4,8"), "--channels applies to --model cnn"
    )
    assert_one_line_error(
        jaxbp("gradcheck", "--model", "cnn", "--channels", "4,x"), "--channels"
    )


def test_devices_beyond_available_is_a_clear_error(tmp_path):
    result = jaxbp("train", *FAST, "--devices", "64", "--out", str(tmp_path))
    assert_one_line_error(
        result, "--devices 64", "available", "xla_force_host_platform_device_count"
    )


@pytest.mark.parametrize("flag", ["--out", "--checkpoint-dir"])
def test_a_path_flag_naming_a_file_exits_2_before_training(run_main, tmp_path, flag):
    (tmp_path / "file").write_text("")
    for path in (tmp_path / "file", tmp_path / "file" / "below"):
        result = run_main(
            "train", *FAST, "--out", str(tmp_path / "out"), flag, str(path)
        )
        assert_one_line_error(result, flag, "is a file, not a directory")
        assert not (tmp_path / "out").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("flag", ["--out", "--checkpoint-dir"])
def test_a_path_flag_not_writable_exits_2_before_training(
    run_main, tmp_path, monkeypatch, flag
):
    import os

    from jaxbp import train

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode)
    )  # chmod does not bind root, who runs these tests in CI containers

    def no_training(*args, **kwargs):
        raise AssertionError("trained despite an unwritable path")

    monkeypatch.setattr(train, "fit", no_training)
    out = ["--out", str(tmp_path / "out")] if flag != "--out" else []
    result = run_main("train", *FAST, *out, flag, str(locked / "run"))
    assert_one_line_error(result, flag, "not writable")


def test_messages_name_flags_not_python_arguments(run_main, monkeypatch, tmp_path):
    import jax

    one = jax.devices()[0]
    monkeypatch.setattr(jax, "devices", lambda *a: [one, one])  # two host devices
    checkpoint.save(tmp_path / "ckpt", 1, {"w": np.zeros(2)})
    cases = [
        (["--devices", "2", "--batch-size", "33"], ["--batch-size 33", "--devices 2"]),
        (["--resume"], ["--resume", "--checkpoint-dir"]),
        (["--checkpoint-dir", str(tmp_path / "ckpt")], ["--resume"]),
        (["--model", "cnn", "--dataset", "blobs"], ["--model cnn", "--dataset"]),
    ]
    for flags, fragments in cases:
        result = run_main("train", *FAST, "--out", str(tmp_path / "out"), *flags)
        assert_one_line_error(result, *fragments)
        for python_name in ("=True", "resume=", "images=", "devices=", "batch_size"):
            assert python_name not in result.stderr, result.stderr
