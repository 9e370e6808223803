"""Section ``sequence``: tokens per second of a character-level language
model's train step, for the tanh RNN, the LSTM, the GRU and the GPT, with the
hand-written backward pass and with ``jax.value_and_grad``.

The GPT (``jaxbp.model.gpt`` at nanoGPT's CPU configuration, the preset of
``jaxbp train --model gpt``) is also timed with checkpointed blocks
(``remat``: time against the plain manual step, and XLA's memory of both
chunks), and its ``manual_gflops`` counts llm.c's training FLOPs per token
(:func:`gpt_flops_per_token`), so ``manual_of_peak`` is its model FLOP
utilisation.

The model is ``jaxbp.recipes.language_model``: embedding (64) -> one
recurrent layer (256 units, every state) -> dense over the vocabulary of the
default corpus (:func:`jaxbp.data.text.text_corpus`), float32, trained by
Adam with cross-entropy over every position, on batches of 32 windows of 64
characters. A timed call is one jitted :func:`jaxbp.train.run_steps` chunk
of ``steps`` train steps (:func:`jaxbp.train.make_step`, the step loop as a
``lax.scan``), the program ``jaxbp.train.fit_language_model`` runs: the
windows are gathered from the token stream inside the scan, at positions
drawn in advance, and the next tokens become one-hot rows inside the step.
Manual and autodiff chunks are timed interleaved (:mod:`benchmarks.timing`);
the ratio is the median of the per-repetition ratios.

``manual_gflops`` is the rate of the step's matrix products
(:func:`step_matmul_flops`), ``manual_of_peak`` that rate over the measured
matmul peak when the ``matmul`` section ran first.

``python benchmarks/sequence.py [--quick] [--out DIR]`` runs this section
(after the ``matmul`` section, for the peak) and writes
``DIR/sequence.json``; ``benchmarks/benchmark.py`` runs it with the others.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jax
import jax.numpy as jnp

from benchmarks import xla
from benchmarks.context import BenchContext
from benchmarks.timing import interleaved_times, median, ratio_columns, time_columns
from jaxbp import optim, recipes
from jaxbp.data import text
from jaxbp.train import TrainState, make_step, run_steps
from jaxbp.train.language import next_token_targets, window_batches

KINDS = ("rnn", "lstm", "gru", "gpt")
MODES = ("manual", "autodiff")
#: The GPT is also timed with checkpointed blocks (``gpt(..., remat=True)``).
GPT_MODES = (*MODES, "remat")
#: Gates per recurrent kind: the rows of W_ih and W_hh are GATES x hidden.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: (embedding, hidden, batch, block, steps per chunk) of the full and quick runs.
FULL = {"embed": 64, "hidden": 256, "batch": 32, "block": 64, "steps": 10}
QUICK = {"embed": 16, "hidden": 32, "batch": 8, "block": 16, "steps": 4}
#: The GPT's: nanoGPT's CPU configuration (jaxbp train --model gpt's preset).
GPT_FULL = {
    "layers": 4,
    "heads": 4,
    "width": 128,
    "batch": 12,
    "block": 64,
    "steps": 10,
}
GPT_QUICK = {"layers": 1, "heads": 2, "width": 16, "batch": 4, "block": 16, "steps": 4}

#: The printed table: (row key, header, format); "_iqr" keys print q1-q3.
COLUMNS = [
    ("name", "model", "{}"),
    ("params", "params", "{}"),
    ("manual_tokens_per_s", "manual tok/s", "{:,.0f}"),
    ("autodiff_tokens_per_s", "autodiff tok/s", "{:,.0f}"),
    ("manual_step_ms", "manual ms/step", "{:.2f}"),
    ("autodiff_step_ms", "autodiff ms/step", "{:.2f}"),
    ("manual/autodiff", "man/auto", "{:.3f}"),
    ("manual/autodiff_iqr", "IQR", "{}"),
    ("manual_gflops", "GFLOP/s", "{:.1f}"),
    ("manual_of_peak", "of peak", "{:.0%}"),
    ("remat/manual", "remat time", "{:.2f}"),
    ("manual_temp_mib", "temp MiB", "{:.1f}"),
    ("remat_temp_mib", "remat MiB", "{:.1f}"),
]


def gpt_flops_per_token(params: int, settings: dict) -> int:
    """llm.c's count of a GPT's training FLOPs per token: 6 × parameters (the
    matrix products, forward and backward) + 6 × layers × context × width
    (the attention scores and their weighted sums)."""
    s = settings
    return 6 * params + 6 * s["layers"] * s["block"] * s["width"]


def step_matmul_flops(kind: str, vocab_size: int, settings: dict) -> int:
    """The multiply-adds (x2) of one train step's matrix products: the
    forward's input projection x W_ihᵀ, recurrent products h W_hhᵀ and head
    h W, once more each for the weight gradients and once for the input
    gradients (3x the forward); the elementwise gate arithmetic is left out."""
    s = settings
    gates_hidden = GATES[kind] * s["hidden"]
    per_position = s["embed"] * gates_hidden + s["hidden"] * gates_hidden
    per_position += s["hidden"] * vocab_size
    return 3 * 2 * s["batch"] * s["block"] * per_position


def token_step(model, optimizer, backprop: str):
    """``make_step``'s train step on next tokens ``y`` (B, T), made one-hot
    inside the step, as :func:`jaxbp.train.fit_language_model` runs it."""
    step = make_step(
        model, loss="cross_entropy", optimizer=optimizer, backprop=backprop
    )

    def on_tokens(train_state, xb, yb, key):
        return step(train_state, xb, next_token_targets(model, yb), key)

    return on_tokens


def build_model(kind: str, vocab_size: int, settings: dict, remat: bool = False):
    """The language model ``kind`` of ``settings`` (``recipes.language_model``)."""
    s = settings
    if kind == "gpt":
        sizes = {"layers": s["layers"], "heads": s["heads"], "width": s["width"]}
        sizes["remat"] = remat
    else:
        sizes = {"hidden": (s["hidden"],), "embed_dim": s["embed"]}
    return recipes.language_model(kind, vocab_size, block_size=s["block"], **sizes)


def chunk_calls(kind: str, corpus, settings: dict) -> tuple[dict, int, dict]:
    """The chunks of ``settings["steps"]`` steps (manual, autodiff, and for the
    GPT manual with checkpointed blocks) as argument-less calls, and the
    model's parameter count.

    Each chunk is ``run_steps`` over the training tokens with the windows'
    positions as index rows (steps, batch, block), drawn in advance as
    ``fit_language_model`` draws a round's windows."""
    s = settings
    model = build_model(kind, corpus.vocab_size, s)
    optimizer = optim.adam(1e-3)
    params = model.init(jax.random.key(0))
    train_state = TrainState(params, model.init_state(), optimizer.init(params))
    tokens = corpus.train
    shape = (s["steps"], s["batch"], s["block"])
    starts, keys = window_batches(jax.random.key(1), 1, tokens.shape[0], shape)
    offsets = starts[..., None] + jnp.arange(s["block"])
    calls, memory = {}, {}
    for mode in GPT_MODES if kind == "gpt" else MODES:
        backprop = "autodiff" if mode == "autodiff" else "manual"
        remat = build_model(kind, corpus.vocab_size, s, remat=True)
        step = token_step(remat if mode == "remat" else model, optimizer, backprop)
        chunk = jax.jit(functools.partial(run_steps, step))
        arguments = (train_state, tokens[:-1], tokens[1:], offsets, keys)
        calls[mode] = functools.partial(chunk, *arguments)
        if kind == "gpt" and mode != "autodiff":  # the memory remat saves
            compiled = chunk.lower(*arguments).compile()
            memory.update(xla.attempt_columns(mode, xla.memory_columns, compiled, mode))
    count = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    return calls, count, memory


def sequence_rows(
    ctx: BenchContext,
    kinds: Sequence[str] | None = None,
    settings: dict | None = None,
) -> list[dict]:
    """One row per recurrent kind (default :data:`KINDS`): tokens per second
    and ms per step of the manual and autodiff train steps, and their paired
    ratio; ``settings`` default to :data:`FULL` (:data:`QUICK` when quick)."""
    kinds = KINDS if kinds is None else kinds
    rows = []
    for kind in kinds:
        s = _settings(kind, ctx.quick, settings)
        corpus = text.text_corpus(block_size=s["block"])
        tokens = s["steps"] * s["batch"] * s["block"]
        calls, count, memory = chunk_calls(kind, corpus, s)
        times = interleaved_times(calls, reps=ctx.reps, min_seconds=ctx.min_seconds)
        row: dict[str, Any] = {
            "section": "sequence",
            "name": kind,
            "params": count,
            "vocab_size": corpus.vocab_size,
            **s,
        }
        for mode in calls:
            row.update(time_columns(f"{mode}_step_ms", times[mode] / s["steps"]))
            row[f"{mode}_tokens_per_s"] = tokens / median(times[mode])
        row.update(ratio_columns("manual/autodiff", times["manual"], times["autodiff"]))
        if "remat" in calls:
            row.update(ratio_columns("remat/manual", times["remat"], times["manual"]))
        row.update(memory)
        if kind == "gpt":
            flops = gpt_flops_per_token(count, s) * s["batch"] * s["block"]
        else:
            flops = step_matmul_flops(kind, corpus.vocab_size, s)
        row["step_matmul_gflop"] = flops / 1e9
        row["manual_gflops"] = flops / (row["manual_step_ms"] * 1e6)
        if ctx.shared.get("peak_gflops"):
            row["manual_of_peak"] = row["manual_gflops"] / ctx.shared["peak_gflops"]
        ctx.say(
            f"sequence {kind}: manual {row['manual_tokens_per_s']:,.0f} tok/s, "
            f"autodiff {row['autodiff_tokens_per_s']:,.0f} tok/s, "
            f"manual/autodiff {row['manual/autodiff']:.3f}"
        )
        rows.append(row)
    return rows


def _settings(kind: str, quick: bool, given: dict | None) -> dict:
    """The sizes of ``kind``'s run: ``given`` (recurrent kinds only), else the
    full or quick defaults."""
    if kind == "gpt":
        return GPT_QUICK if quick else GPT_FULL
    return given or (QUICK if quick else FULL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the matmul peak and this section: print their tables, write
    ``DIR/sequence.json``."""
    from benchmarks import benchmark, matmul, report

    args = report.parse_args(
        "sequence",
        "Tokens per second of character-level RNN, LSTM and GRU train steps, "
        "manual vs autodiff backprop.",
        argv,
    )
    ctx = BenchContext.make(quick=args.quick, log=lambda m: print(m, file=sys.stderr))
    started = time.perf_counter()
    result = benchmark.run(ctx, [matmul.matmul_rows, sequence_rows])
    benchmark.print_tables(result["rows"])
    print(f"{time.perf_counter() - started:.0f} s")
    print(f"wrote {report.write_json(args.path, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
