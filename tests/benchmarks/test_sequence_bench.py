"""benchmarks/sequence.py: tokens per second of the language-model train
steps, manual vs autodiff, in the smallest settings."""

import functools
import json

import chex
import jax
import pytest
from row_checks import assert_ordered_quartiles, assert_positive

from benchmarks import benchmark, matmul, sequence
from benchmarks.matmul import matmul_rows
from jaxbp.data import text

TINY = {"embed": 4, "hidden": 6, "batch": 3, "block": 5, "steps": 2}
TINY_GPT = {"layers": 2, "heads": 2, "width": 8, "batch": 3, "block": 5, "steps": 2}


def test_sequence_rows(ctx):
    rows = sequence.sequence_rows(ctx)
    assert [r["name"] for r in rows] == ["rnn", "lstm", "gru", "gpt"]
    corpus = text.text_corpus(block_size=sequence.QUICK["block"])
    for row in rows:
        assert row["section"] == "sequence" and row["vocab_size"] == corpus.vocab_size
        assert row["params"] > 0 and row["steps"] == sequence.QUICK["steps"]
        assert_positive(row, "manual_tokens_per_s", "autodiff_tokens_per_s")
        assert_positive(row, "manual_step_ms", "autodiff_step_ms", "manual/autodiff")
        assert_positive(row, "manual_gflops", "step_matmul_gflop")
        assert "manual_of_peak" not in row  # no matmul section ran: no peak
        assert_ordered_quartiles(
            row, "manual_step_ms", "autodiff_step_ms", "manual/autodiff"
        )
        for mode in sequence.MODES:  # the same medians, per token and per step
            per_step = row[f"{mode}_tokens_per_s"] * row[f"{mode}_step_ms"] / 1e3
            assert per_step == pytest.approx(row["batch"] * row["block"])
    # an LSTM has four gates' weights, a GRU three, a tanh RNN one
    assert rows[1]["params"] > rows[2]["params"] > rows[0]["params"]
    gpt = rows[3]
    assert_positive(gpt, "remat_tokens_per_s", "remat/manual")
    assert_positive(gpt, "manual_temp_mib", "remat_temp_mib")
    assert gpt["remat_temp_mib"] <= gpt["manual_temp_mib"]  # what remat is for
    per_token = sequence.gpt_flops_per_token(gpt["params"], sequence.GPT_QUICK)
    assert gpt["step_matmul_gflop"] * 1e9 == per_token * gpt["batch"] * gpt["block"]


@pytest.mark.parametrize("kind", sequence.KINDS)
def test_manual_and_autodiff_chunks_train_alike(kind):
    settings = TINY_GPT if kind == "gpt" else TINY
    corpus = text.text_corpus(block_size=settings["block"])
    calls, _, _ = sequence.chunk_calls(kind, corpus, settings)
    assert set(calls) == set(sequence.GPT_MODES if kind == "gpt" else sequence.MODES)
    (manual, manual_losses), (autodiff, autodiff_losses) = (
        calls[mode]() for mode in sequence.MODES
    )
    if kind == "gpt":  # checkpointed blocks: the same gradients
        remat, remat_losses = calls["remat"]()
        chex.assert_trees_all_close(remat_losses, manual_losses, rtol=1e-6)
        chex.assert_trees_all_close(remat.params, manual.params, atol=1e-6)
    assert manual_losses.shape == (TINY["steps"],)
    chex.assert_trees_all_close(manual_losses, autodiff_losses, rtol=1e-5)
    chex.assert_trees_all_close(manual.params, autodiff.params, atol=1e-5)
    first = jax.tree_util.tree_leaves(manual.params)[0]
    assert first.dtype == jax.numpy.float32


@pytest.mark.parametrize(
    "kind, sizes, flops",
    [
        # 3 x 2 x B T (D G H + H G H + H V), G gates
        ("rnn", (1, 1, 1, 1, 1), 3 * 2 * (1 + 1 + 1)),
        ("lstm", (2, 3, 1, 1, 5), 3 * 2 * (2 * 12 + 3 * 12 + 3 * 5)),
        ("gru", (2, 3, 4, 5, 5), 3 * 2 * 20 * (2 * 9 + 3 * 9 + 3 * 5)),
    ],
)
def test_step_matmul_flops(kind, sizes, flops):
    embed, hidden, batch, block, vocab = sizes
    settings = {"embed": embed, "hidden": hidden, "batch": batch, "block": block}
    assert sequence.step_matmul_flops(kind, vocab, settings) == flops


def test_gpt_flops_per_token_is_llm_c_s_count():
    settings = {"layers": 2, "block": 3, "width": 5}
    assert sequence.gpt_flops_per_token(7, settings) == 6 * 7 + 6 * 2 * 3 * 5


def test_the_section_is_hooked_and_the_script_writes_its_json(
    tmp_path, monkeypatch, capsys
):
    assert sequence.sequence_rows in benchmark.SECTIONS
    assert benchmark.COLUMNS["sequence"] == sequence.COLUMNS
    monkeypatch.setattr(sequence, "QUICK", TINY)
    monkeypatch.setattr(sequence, "KINDS", ("gru",))
    monkeypatch.setattr(
        matmul, "matmul_rows", functools.partial(matmul_rows, sizes=(32,))
    )
    assert sequence.main(["--quick", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out.split("[sequence]")[1].splitlines()
    assert all(header in table[1] for _, header, _ in sequence.COLUMNS)
    assert table[3].split()[0] == "gru" and table[4] == ""
    written = json.loads((tmp_path / "sequence.json").read_text())
    matmul_row, row = written["rows"]
    assert matmul_row["section"] == "matmul" and row["name"] == "gru"
    assert row["manual_of_peak"] == pytest.approx(
        row["manual_gflops"] / written["settings"]["peak_gflops"]
    )
    assert written["settings"]["quick"] is True and written["machine"]["jax"]
