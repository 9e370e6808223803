"""benchmarks/mnist_memory.py: the generated IDX files, and a quick run whose
two fresh-process ``jaxbp train`` epochs stay under the memory limit."""

import json

import numpy as np
import pytest
from helpers import users_xla_flags
from row_checks import assert_positive

from benchmarks import mnist_memory
from jaxbp import data


def _unit_rows(images):
    """Images as centred rows of unit length (their dot products: correlations)."""
    rows = images.reshape(len(images), -1).astype(np.float64)
    rows -= rows.mean(axis=1, keepdims=True)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_synthetic_mnist_is_deterministic_balanced_and_mnist_shaped():
    images, labels = mnist_memory.synthetic_mnist(250, seed=3)
    again, _ = mnist_memory.synthetic_mnist(250, seed=3)
    other, _ = mnist_memory.synthetic_mnist(250, seed=4)
    assert images.shape == (250, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.uint8 and np.bincount(labels).tolist() == [25] * 10
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, other)
    # the classes differ: each class's mean image correlates best with its pattern
    means = np.stack([images[labels == c].mean(0) for c in range(10)])
    patterns = mnist_memory.class_patterns(np.random.default_rng(1234))
    correlations = _unit_rows(means) @ _unit_rows(patterns).T
    assert correlations.argmax(axis=1).tolist() == list(range(10))


def test_write_mnist_is_loadable_and_reuses_files(tmp_path):
    mnist_memory.write_mnist(tmp_path, 200, 100)
    dataset = data.load("mnist", data_dir=tmp_path)
    assert dataset.test.x.shape[0] == 100
    assert dataset.train.x.shape[0] + dataset.val.x.shape[0] == 200
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    mnist_memory.write_mnist(tmp_path, 200, 100)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps
    mnist_memory.write_mnist(tmp_path, 300, 100)  # another size: rewritten
    assert data.load("mnist", data_dir=tmp_path).test.x.shape[0] == 100
    train_file = tmp_path / data.MNIST_FILES["train_images"]
    assert data.read_idx(train_file).shape == (300, 28, 28)


def test_quick_run_stays_under_the_limit(tmp_path, capsys, monkeypatch):
    # the children run as a user's would: without the suite's fast-compile
    # XLA options (unoptimized code would triple the CNN's epoch)
    monkeypatch.setenv("XLA_FLAGS", users_xla_flags())
    sizes = ["--train-size", "2000", "--test-size", "500"]  # a third of --quick's
    assert mnist_memory.main(["--quick", *sizes, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    header = [h for _, h in mnist_memory.COLUMNS]
    assert out[1].split("  ")[0] == header[0] and all(h in out[1] for h in header)
    assert [line.split()[0] for line in out[3:5]] == ["mlp", "cnn"]
    written = json.loads((tmp_path / "mnist_memory.json").read_text())
    assert written["quick"] is True and written["limit_mib"] == 2048
    assert written["machine"]["nproc"] >= 1 and len(written["machine"]["loadavg"]) == 3
    rows = written["rows"]
    assert [r["model"] for r in rows] == list(mnist_memory.MODELS) == ["mlp", "cnn"]
    for row in rows:
        assert (row["train_images"], row["test_images"]) == (2000, 500)
        assert row["returncode"] == 0 and row["under_limit"] is True
        assert_positive(row, "peak_rss_mib", "wall_seconds", "train_seconds")
        assert 100 < row["peak_rss_mib"] < 2048
        assert row["train_seconds"] < row["wall_seconds"]
        assert 0.3 < row["test_accuracy"] <= 1  # chance is 0.1
    assert rows[1]["command"].endswith("--model cnn")


def test_quick_sizes_and_given_sizes():
    assert mnist_memory.QUICK_SIZES == (6000, 1000)
    args = mnist_memory.parse_args(["--quick"])
    assert (args.train_size, args.test_size) == mnist_memory.QUICK_SIZES
    args = mnist_memory.parse_args(["--train-size", "500"])
    assert (args.train_size, args.test_size) == (500, 10000)


@pytest.mark.parametrize("flag", ["--train-size", "--test-size"])
def test_sizes_must_hold_every_class(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        mnist_memory.parse_args([flag, "20"])
    assert exit_info.value.code == 2
    assert "must be at least 100" in capsys.readouterr().err
