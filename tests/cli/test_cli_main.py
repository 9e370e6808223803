"""The exit-status policy of ``jaxbp`` (the module docstring of jaxbp.cli):
a diverged run exits 3 with one line; a bug shows its traceback and exits 1,
whatever its exception type (a ValueError too)."""

import subprocess
import sys

import pytest
from cli_testing import FAST, assert_one_line_error, jaxbp

from jaxbp import train


def test_help_lists_the_subcommands():
    result = jaxbp("--help")
    assert result.returncode == 0
    for command in ("train", "gradcheck"):
        assert command in result.stdout
    assert "bench" not in result.stdout  # the benchmark is benchmarks/benchmark.py


def test_a_diverging_run_exits_3_naming_epoch_and_step(tmp_path):
    result = jaxbp(
        "train", *FAST, "--optimizer", "sgd", "--lr", "1e6", "--out", str(tmp_path)
    )
    assert_one_line_error(result, "diverged", "epoch 1, step ", "--lr", status=3)
    assert not (tmp_path / "metrics.json").exists()


def test_divergence_in_process_exits_3(run_main, monkeypatch):
    def diverging(*args, **kwargs):
        raise train.TrainingDiverged(
            "diverged", epoch=7, step=12, loss=float("inf"), history=[]
        )

    monkeypatch.setattr(train, "fit", diverging)
    result = run_main("train", *FAST)
    assert_one_line_error(result, "epoch 7, step 12", status=3)


@pytest.mark.parametrize("error", [ValueError, ZeroDivisionError])
def test_a_library_error_propagates(run_main, monkeypatch, error):
    """A ValueError from inside the library is a bug, not a usage error: it
    reaches the caller of main (and so the traceback), it is not exit 2."""

    def broken(*args, **kwargs):
        raise error("injected library bug")

    monkeypatch.setattr(train, "fit", broken)
    with pytest.raises(error, match="injected library bug"):
        run_main("train", *FAST)


DRIVER = """
import sys
import jaxbp.recipes

def broken(*args, **kwargs):
    raise {error}("injected library bug")

jaxbp.recipes.{target} = broken
from jaxbp.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    ("error", "target"),
    [("ValueError", "optimizer"), ("ZeroDivisionError", "model")],
)
def test_a_bug_shows_its_traceback_and_exits_1(tmp_path, error, target):
    result = subprocess.run(
        [sys.executable, "-c", DRIVER.format(error=error, target=target)]
        + ["train", *FAST, "--out", str(tmp_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback (most recent call last)" in result.stderr
    assert f"{error}: injected library bug" in result.stderr
