"""``--resume`` says what it does: from which epoch, refusing an empty folder
or other flags, falling back past a corrupt newest checkpoint with a warning."""

import json

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


def metrics(out):
    return json.loads((out / "metrics.json").read_text())


def test_allow_changed_flags_resumes_with_a_new_learning_rate(
    run_main, two_epochs, tmp_path
):
    """A warning names the change; metrics.json's config has the new --lr and
    the change with the epoch it applies from; flags.json is updated, so a
    later resume with the new --lr needs no override; the two epochs before
    are the checkpoints', the one after trained at the new rate."""
    flags, ckpt = two_epochs
    before = histories(tmp_path / "out")
    changed = [*flags, "--lr", "0.05", "--epochs", "3", "--resume"]
    result = run_main("train", *changed, "--allow-changed-flags")
    assert result.returncode == 0, result.stderr
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("jaxbp train: warning: --allow-changed-flags")
    assert "--lr 0.01 in the checkpoints, now 0.05" in warning
    assert "resumed from epoch 2 of 3" in result.stdout
    config = metrics(tmp_path / "out")["config"]
    assert config["lr"] == 0.05
    assert config["changed_on_resume"] == [{"lr": [0.01, 0.05], "epoch": 2}]
    assert json.loads((ckpt / "flags.json").read_text())["lr"] == 0.05
    resumed = histories(tmp_path / "out")
    assert resumed[:2] == before
    same_lr = tmp_path / "same"
    plain = [*FAST, "--epochs", "3", "--out", str(same_lr)]
    assert run_main("train", *plain).returncode == 0
    assert resumed[2]["train_loss"] != histories(same_lr)[2]["train_loss"]

    again = run_main("train", *changed, "--epochs", "4")
    assert again.returncode == 0 and again.stderr == "", again.stderr
    config = metrics(tmp_path / "out")["config"]
    assert config["lr"] == 0.05  # the change is kept on a later resume
    assert config["changed_on_resume"] == [{"lr": [0.01, 0.05], "epoch": 2}]


@pytest.mark.parametrize(
    "changed, fixed",
    [
        (["--hidden", "8"], "--hidden"),
        (["--lr", "0.02", "--seed", "1"], "--seed"),
        (["--lr-schedule", "cosine"], "--lr-schedule"),  # adds a step count
        (["--clip-norm", "1"], "--clip-norm"),  # recorded in the checkpoints
    ],
)
def test_allow_changed_flags_refuses_structural_flags(
    run_main, two_epochs, changed, fixed
):
    flags, ckpt = two_epochs
    stored = (ckpt / "flags.json").read_text()
    result = run_main(
        "train", *flags, *changed, "--epochs", "3", "--resume", "--allow-changed-flags"
    )
    assert_one_line_error(
        result, "--allow-changed-flags", fixed, "cannot be overridden"
    )
    assert "--lr," not in result.stderr.split("cannot")[0]  # only the fixed ones
    assert (ckpt / "flags.json").read_text() == stored


def test_a_changed_learning_rate_alone_points_at_the_override(run_main, two_epochs):
    flags, _ = two_epochs
    result = run_main("train", *flags, "--lr", "0.02", "--epochs", "3", "--resume")
    assert_one_line_error(
        result, "--lr 0.01 in the checkpoints", "--allow-changed-flags"
    )
    hidden = run_main("train", *flags, "--hidden", "8", "--epochs", "3", "--resume")
    assert "--allow-changed-flags" not in hidden.stderr


def test_allow_changed_flags_without_resume_exits_2(run_main, tmp_path):
    flags = ["--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "c")]
    result = run_main("train", *FAST, *flags, "--allow-changed-flags")
    assert_one_line_error(result, "--allow-changed-flags", "--resume")
