"""The command line, run as a user runs it: through subprocesses."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

FAST = ["--dataset", "blobs", "--hidden", "16", "--epochs", "5", "--quiet"]


def jaxbp(*args, cwd=None, timeout=240):
    return subprocess.run(
        [sys.executable, "-m", "jaxbp", *args],
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
