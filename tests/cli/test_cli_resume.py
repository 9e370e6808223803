"""``--resume`` says what it does: from which epoch, refusing an empty folder
or other flags, falling back past a corrupt newest checkpoint with a warning."""

import pytest
from cli_testing import FAST, assert_one_line_error, histories

from jaxbp import checkpoint


@pytest.fixture
def two_epochs(run_main, tmp_path):
    """``(flags, ckpt)``: a 2-epoch run checkpointed in ``tmp_path/ckpt``."""
    ckpt = tmp_path / "ckpt"
    flags = [*FAST, "--out", str(tmp_path / "out"), "--checkpoint-dir", str(ckpt)]
    first = run_main("train", *flags, "--epochs", "2")
    assert first.returncode == 0, first.stderr
    return flags, ckpt


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_resume_without_a_checkpoint_exits_2(run_main, tmp_path, folder):
    ckpt = tmp_path / folder
    if folder == "empty":
        ckpt.mkdir()
    flags = ["--out", str(tmp_path / "out"), "--checkpoint-dir", str(ckpt)]
    result = run_main("train", *FAST, *flags, "--resume")
    assert_one_line_error(result, "--resume", str(ckpt), "no checkpoint")
    assert not (tmp_path / "out").exists()


def test_resume_says_from_which_epoch(run_main, two_epochs):
    flags, _ = two_epochs
    result = run_main("train", *flags, "--epochs", "3", "--resume")
    assert result.returncode == 0, result.stderr
    assert "resumed from epoch 2 of 3; 1 epoch in " in result.stdout
    fresh = run_main("train", *flags[:-2], "--epochs", "3")
    assert "resumed" not in fresh.stdout and "3 epochs in " in fresh.stdout


@pytest.mark.parametrize(
    "changed, fragments",
    [
        (["--lr", "0.02"], ["--lr 0.01 in the checkpoints, now 0.02"]),
        (["--hidden", "8,8"], ["--hidden 16 in the checkpoints, now 8,8"]),
        (
            ["--optimizer", "sgd", "--seed", "1"],
            ["--optimizer adam in the checkpoints, now sgd", "--seed 0"],
        ),
    ],
)
def test_resume_with_other_flags_exits_2_naming_them(
    run_main, two_epochs, changed, fragments
):
    flags, _ = two_epochs
    result = run_main("train", *flags, *changed, "--epochs", "3", "--resume")
    assert_one_line_error(result, "--resume", "other flags", *fragments)


def test_corrupt_newest_checkpoint_falls_back_with_a_warning(
    run_main, two_epochs, tmp_path
):
    flags, ckpt = two_epochs
    assert run_main("train", *flags, "--epochs", "3", "--resume").returncode == 0
    assert [step for step, _ in checkpoint.all_checkpoints(ckpt)][-2:] == [2, 3]
    newest = checkpoint.checkpoint_path(ckpt, 3)
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    result = run_main("train", *flags, "--epochs", "4", "--resume")
    assert result.returncode == 0, result.stderr
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1 and "warning" in warning[0], result.stderr
    assert newest.name in warning[0] and "ckpt-00000002" in warning[0]
    assert "resumed from epoch 2 of 4" in result.stdout
    resumed = histories(tmp_path / "out")
    reference = tmp_path / "reference"
    plain = [*FAST, "--epochs", "4", "--out", str(reference)]
    assert run_main("train", *plain).returncode == 0
    assert resumed == histories(reference)
