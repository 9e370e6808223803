"""``jaxbp train``'s progress bar: epochs or (text runs) steps, ``compiling``
until the first record, a resumed run's bar starting where it resumed."""

import argparse

import numpy as np
import pytest
from cli_testing import FAST

from jaxbp import checkpoint
from jaxbp.cli import reporting


def bar_args(**overrides):
    flags = {"quiet": False, "resume": False, "checkpoint_dir": None}
    flags |= {"dataset": "digits", "epochs": 3}
    return argparse.Namespace(**(flags | overrides))


def last_state(stderr: str) -> str:
    """The bar as last drawn (tqdm redraws it after a carriage return)."""
    return stderr.replace("\n", "\r").strip("\r").split("\r")[-1]


def saved_epochs(directory, *epochs):
    for epoch in epochs:
        checkpoint.save(directory, epoch, {"w": np.zeros(2)}, {"epoch": epoch})
    return directory


def test_a_fresh_bar_compiles_then_counts_epochs(capsys):
    show, close = reporting.progress_bar(bar_args())
    assert last_state(capsys.readouterr().err).startswith("compiling:   0%")
    show({"epoch": 1, "train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.91})
    close()
    state = last_state(capsys.readouterr().err)
    assert state.startswith("training:  33%") and " 1/3 " in state, state
    assert "loss=0.5000, val_acc=0.9100" in state


def test_a_resumed_bar_starts_at_the_newest_checkpoint(capsys, tmp_path):
    ckpt = saved_epochs(tmp_path / "ckpt", 1, 2)
    args = bar_args(resume=True, checkpoint_dir=str(ckpt), epochs=5)
    show, close = reporting.progress_bar(args)
    assert " 2/5 " in last_state(capsys.readouterr().err)
    show({"epoch": 3, "train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.9})
    close()
    assert " 3/5 " in last_state(capsys.readouterr().err)


def test_resuming_a_finished_run_shows_a_full_bar(capsys, tmp_path):
    ckpt = saved_epochs(tmp_path / "ckpt", 3)
    _, close = reporting.progress_bar(
        bar_args(resume=True, checkpoint_dir=str(ckpt), epochs=3)
    )
    close()
    state = last_state(capsys.readouterr().err)
    assert state.startswith("finished: 100%") and " 3/3 " in state, state


def test_a_text_run_counts_steps_and_shows_the_validation_loss(capsys):
    args = bar_args(dataset="text", epochs=None, steps=1000)
    show, close = reporting.progress_bar(args)
    assert " 0/1000 " in last_state(capsys.readouterr().err)
    show({"step": 200, "train_loss": 2.71828, "val_loss": 2.5})
    close()
    state = last_state(capsys.readouterr().err)
    assert " 200/1000 " in state and "step" in state, state
    assert "loss=2.7183, val_loss=2.5000" in state


@pytest.mark.parametrize(
    "record, postfix",
    [
        (
            {"epoch": 2, "train_loss": 1.0, "val_loss": 0.5, "val_accuracy": 0.5},
            "val_acc",
        ),
        ({"epoch": 2, "train_loss": 1.0, "val_loss": 0.5, "val_accuracy": None}, None),
        ({"step": 2, "train_loss": 1.0, "val_loss": 0.5}, "val_loss"),
        ({"step": 2, "train_loss": 1.0, "val_loss": None}, None),
    ],
)
def test_bar_postfix(record, postfix):
    shown = reporting.bar_postfix(record)
    assert shown["loss"] == "1.0000"
    assert set(shown) == {"loss"} | ({postfix} if postfix else set())


def test_resuming_a_finished_run_through_the_cli(run_main, tmp_path):
    """The defect: the bar of a finished run, resumed, stuck at 0/N."""
    ckpt = tmp_path / "ckpt"
    flags = [*FAST, "--out", str(tmp_path / "out"), "--checkpoint-dir", str(ckpt)]
    flags = [*flags, "--epochs", "2"]
    assert run_main("train", *flags).returncode == 0
    verbose = [f for f in flags if f != "--quiet"]
    result = run_main("train", *verbose, "--resume")
    assert result.returncode == 0, result.stderr
    assert "resumed from epoch 2 of 2" in result.stdout
    state = last_state(result.stderr)
    assert " 2/2 " in state and "100%" in state, result.stderr
    assert " 0/2 " not in result.stderr
