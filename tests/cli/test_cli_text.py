"""``jaxbp train --dataset text``, ``jaxbp sample`` and ``gradcheck --dataset text``."""

import json
import math
import os

import pytest
from cli_testing import assert_one_line_error

TINY = [
    *("--dataset", "text", "--hidden", "16", "--embed-dim", "8"),
    *("--block-size", "8", "--batch-size", "4", "--steps", "6"),
    *("--eval-interval", "4", "--eval-batches", "1", "--quiet"),
]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "cats.txt"
    path.write_text("the cat sat on the mat; the dog sat on the log.\n" * 30)
    return path


def test_train_writes_the_language_model_metrics(run_main, tmp_path, text_file):
    out = tmp_path / "run"
    result = run_main(
        "train",
        *TINY,
        "--model",
        "gru",
        "--text-file",
        str(text_file),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "6 steps in" in result.stdout and "bits/char" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["step"] for r in metrics["history"]] == [4, 6]
    assert set(metrics["history"][0]) == {"step", "train_loss", "val_loss"}
    vocab = sorted(set(text_file.read_text()))
    assert metrics["vocab_size"] == len(vocab)
    assert metrics["val_loss"] == metrics["history"][-1]["val_loss"]
    assert metrics["best_val_loss"] == min(r["val_loss"] for r in metrics["history"])
    assert metrics["val_bits_per_char"] == pytest.approx(
        metrics["val_loss"] / math.log(2)
    )
    assert metrics["tokens_per_second"] > 0
    assert (out / "curves.png").stat().st_size > 0


def test_default_model_and_corpus(run_main, tmp_path):
    result = run_main("train", *TINY, "--steps", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("text: lstm 16")
    assert json.loads((tmp_path / "metrics.json").read_text())["text"] == "pydoc_data"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--dataset", "text", "--model", "mlp"], ["--model mlp", "--dataset text"]),
        (
            ["--dataset", "digits", "--model", "lstm"],
            ["--model lstm", "--dataset digits"],
        ),
        (["--dataset", "text", "--epochs", "3"], ["--epochs", "--steps"]),
        (["--steps", "3"], ["--steps", "--epochs"]),
        (["--dataset", "text", "--eval-batch-size", "7"], ["--eval-batch-size"]),
        (["--dataset", "text", "--eval-batch-size", "full"], ["--eval-batch-size"]),
        (["--dataset", "text", "--channels", "4"], ["--channels"]),
        (["--dataset", "text", "--dropout", "0.1"], ["--dropout"]),
        (["--dataset", "text", "--loss", "mse"], ["--loss mse"]),
        (["--block-size", "8"], ["--block-size"]),
        (["--dataset", "text", "--text-file", "/nonexistent.txt"], ["--text-file"]),
        (["--dataset", "text", "--layers", "2"], ["--layers", "gpt"]),
        (["--dataset", "text", "--model", "gpt", "--hidden", "8"], ["--hidden"]),
        (["--dataset", "text", "--model", "gpt", "--embed-dim", "8"], ["--embed-dim"]),
        (["--optimizer", "sgd", "--beta2", "0.9"], ["--beta2", "adam"]),
        (["--min-lr", "1e-5"], ["--min-lr", "cosine"]),
        (["--lr-schedule", "cosine", "--min-lr", "0.1"], ["--min-lr", "--lr"]),
        (["--epochs", "1", "--warmup", "500"], ["--warmup 500", "40 steps"]),
    ],
)
def test_flags_that_do_not_fit_are_one_line(run_main, argv, fragments):
    assert_one_line_error(run_main("train", *argv, "--quiet"), *fragments)


def test_a_run_too_large_for_memory_is_one_line(run_main, tmp_path):
    """A block size whose attention matrices no machine holds: XLA's failed
    allocation is a usage error naming the size flags, not a traceback."""
    gpt = ["--model", "gpt", "--layers", "1", "--heads", "1", "--width", "8"]
    sizes = ["--block-size", "100000", "--steps", "2", "--warmup", "0"]
    result = run_main("train", *gpt, *sizes, "--quiet", "--out", str(tmp_path))
    assert_one_line_error(
        result, "out of memory", "GiB", "--batch-size", "--block-size"
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "empty"), (b"\x00\x01binary", "binary"), (b"abc", "too short")],
)
def test_bad_text_files_are_one_line(run_main, tmp_path, content, fragment):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    result = run_main("train", *TINY, "--text-file", str(path))
    assert_one_line_error(result, "--text-file", fragment)


def test_resume_trains_on_to_more_steps(run_main, tmp_path, text_file):
    ckpt = tmp_path / "ckpt"
    common = [*TINY, "--text-file", str(text_file), "--checkpoint-dir", str(ckpt)]
    assert run_main("train", *common, "--out", str(tmp_path / "a")).returncode == 0
    result = run_main(
        "train", *common, "--steps", "10", "--resume", "--out", str(tmp_path / "b")
    )
    assert result.returncode == 0, result.stderr
    assert "resumed from step 6 of 10; 4 steps in" in result.stdout
    history = json.loads((tmp_path / "b" / "metrics.json").read_text())["history"]
    assert [r["step"] for r in history] == [4, 6, 10]
    finished = run_main(
        "train", *common, "--steps", "10", "--resume", "--out", str(tmp_path / "c")
    )
    assert "resumed from step 10 of 10; 0 steps in" in finished.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory, text_file):
    from jaxbp import cli

    ckpt = tmp_path_factory.mktemp("sample") / "ckpt"
    argv = [*TINY, "--text-file", str(text_file), "--checkpoint-dir", str(ckpt)]
    out = str(ckpt.parent / "out")
    previous = os.environ.get("JAXBP_COMPILATION_CACHE")
    os.environ["JAXBP_COMPILATION_CACHE"] = "0"  # as run_main: no persistent cache
    try:
        assert cli.main(["train", *argv, "--steps", "40", "--out", out]) == 0
    finally:
        if previous is None:
            del os.environ["JAXBP_COMPILATION_CACHE"]
        else:
            os.environ["JAXBP_COMPILATION_CACHE"] = previous
    return ckpt


def test_sample_continues_the_prompt(run_main, trained, text_file):
    argv = ["sample", "--checkpoint-dir", str(trained), "--prompt", "the c"]
    first = run_main(*argv, "--length", "30", "--seed", "1")
    assert first.returncode == 0, first.stderr
    text = first.stdout.rstrip("\n")
    assert text.startswith("the c") and len(text) == len("the c") + 30
    assert set(text) <= set(text_file.read_text())
    again = run_main(*argv, "--length", "30", "--seed", "1")
    assert again.stdout == first.stdout
    greedy = run_main(*argv, "--length", "30", "--top-k", "1")
    assert greedy.returncode == 0


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--prompt", "the €"], ["--prompt", "'€'"]),
        (["--temperature", "0"], ["--temperature"]),
        (["--length", "0"], ["--length"]),
    ],
)
def test_sample_mistakes_are_one_line(run_main, trained, argv, fragments):
    result = run_main("sample", "--checkpoint-dir", str(trained), *argv)
    assert_one_line_error(result, *fragments)


def test_sample_needs_a_text_run(run_main, tmp_path):
    result = run_main("sample", "--checkpoint-dir", str(tmp_path))
    assert_one_line_error(result, "--checkpoint-dir", "holds no checkpoint")
    assert_one_line_error(
        run_main("sample", "--checkpoint-dir", str(tmp_path / "nope")),
        "--checkpoint-dir",
    )


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_gradcheck_text_models(run_main, model):
    result = run_main(
        "gradcheck",
        "--dataset",
        "text",
        "--model",
        model,
        "--hidden",
        "8",
        "--embed-dim",
        "4",
        "--block-size",
        "6",
        "--batch",
        "3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all gradients agree" in result.stdout
    assert "embedding/table" in result.stdout


GPT = [
    *("--dataset", "text", "--model", "gpt", "--layers", "1", "--heads", "2"),
    *("--width", "16", "--block-size", "8", "--batch-size", "4", "--steps", "6"),
    *("--eval-interval", "3", "--eval-batches", "1", "--warmup", "2", "--quiet"),
]


def test_gpt_trains_resumes_samples_and_remats(run_main, tmp_path, text_file):
    ckpt = tmp_path / "ckpt"
    common = [*GPT, "--text-file", str(text_file)]
    result = run_main(
        "train", *common, "--checkpoint-dir", str(ckpt), "--out", str(tmp_path / "a")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("text: gpt 1 layers, 2 heads, width 16, block 8")
    assert (
        "adamw (jaxbp) lr 0.001 cosine to 0.0001 after 2 warm-up steps β2 0.99"
        in result.stdout
    )
    assert "weight decay 0.1 (matrices)" in result.stdout
    history = json.loads((tmp_path / "a" / "metrics.json").read_text())["history"]
    remat = run_main("train", *common, "--remat", "--out", str(tmp_path / "b"))
    assert remat.returncode == 0, remat.stderr
    again = json.loads((tmp_path / "b" / "metrics.json").read_text())["history"]
    for a, b in zip(history, again):  # checkpointed blocks: the same gradients
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
    sample = run_main("sample", "--checkpoint-dir", str(ckpt), "--length", "12")
    assert sample.returncode == 0, sample.stderr
    # the default prompt (a newline), 12 characters, print's newline
    assert sample.stdout.startswith("\n") and len(sample.stdout) == 1 + 12 + 1


def test_gradcheck_gpt_prints_every_tensor(run_main):
    result = run_main(
        "gradcheck",
        "--model",
        "gpt",
        "--heads",
        "2",
        "--width",
        "8",
        "--block-size",
        "5",
        "--batch",
        "2",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("text: gpt 2 layers")  # the 2-layer default
    for path in ("0.gpt/wte", "0.gpt/wpe", "blocks/1/attn", "0.gpt/ln_f"):
        assert path in result.stdout
    assert "all gradients agree" in result.stdout


def test_remat_is_the_gpt_s(run_main):
    assert_one_line_error(
        run_main("train", "--dataset", "text", "--remat", "--quiet"), "--remat", "gpt"
    )
