"""``jaxbp train --dataset text``: a character-level language model, trained in steps.

flags -> ``jaxbp.data.text`` corpus -> ``jaxbp.recipes.language_model`` ->
``jaxbp.train.fit_language_model`` -> printed summary, ``metrics.json`` and
``curves.png`` (train and validation loss against steps).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from jaxbp.cli import building, distributed, reporting, warmup
from jaxbp.cli.errors import training_errors
from jaxbp.cli.interrupts import interrupted_message
from jaxbp.cli.train import check_training_flags


def run(args) -> int:
    """Train the language model the (checked, preset-filled) flags describe."""
    corpus = building.load_text(args)
    check_training_flags(args, corpus.train.shape[0])
    model = building.build_language_model(args, corpus.vocab_size)
    optimizer = building.build_optimizer(args, args.steps)
    (result, seconds), rounds, stopped = reporting.train_with_progress(
        args,
        lambda on_round, interrupts: fit(
            model, corpus, optimizer, args, on_round, interrupts
        ),
    )
    tokens = trained_tokens(args, result.history, rounds)
    out = write_outputs(args, corpus, result, seconds, tokens, stopped)
    if stopped is not None:
        print(interrupted_message(args, result, out), file=sys.stderr)
        return 128 + stopped
    print(summary(args, result, rounds, seconds, tokens / seconds))
    print(f"wrote {out / 'metrics.json'} and {out / 'curves.png'}")
    return 0


def fit(model, corpus, optimizer, args, on_round, interrupts):
    """``(LanguageModelResult, seconds)``: the one call of ``jaxbp.train``;
    divergence is :class:`Diverged`, an unreadable checkpoint or one written
    with other settings a UsageError naming the flag."""
    from jaxbp import train

    started = time.perf_counter()
    with (
        training_errors(args, lambda error: f"step {error.step}"),
        warmup.in_background(warmup.import_plotting),
    ):
        result = train.fit_language_model(
            model,
            corpus.train,
            corpus.val,
            optimizer=optimizer,
            steps=args.steps,
            batch_size=args.batch_size,
            block_size=args.block_size,
            eval_interval=args.eval_interval,
            eval_batches=args.eval_batches,
            backprop=args.backprop,
            l2=args.l2,
            clip_norm=args.clip_norm,
            patience=args.patience,
            seed=args.seed,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            callback=on_round,
            devices=args.devices,
            should_stop=lambda: interrupts.signal is not None,
            vocab=corpus.vocab,
        )
    return result, time.perf_counter() - started


def trained_tokens(args, history, rounds: int) -> int:
    """Tokens this process trained on: its rounds' steps × batch × block."""
    if not rounds:
        return 0
    done = history[-1]["step"]
    before = history[-rounds - 1]["step"] if len(history) > rounds else 0
    return (done - before) * args.batch_size * args.block_size


def text_metrics(args, corpus, result, seconds, tokens, stopped) -> dict:
    """What ``metrics.json`` holds for a language model."""
    best = min(result.history, key=lambda r: r["val_loss"], default=None)
    final = result.history[-1] if result.history else None
    if args.patience is not None:
        final = best  # the returned parameters are the best round's
    val_loss = None if final is None else final["val_loss"]
    return {
        "val_loss": val_loss,
        "best_val_loss": None if best is None else best["val_loss"],
        "val_bits_per_char": None if val_loss is None else val_loss / math.log(2),
        "best_step": result.best_step if result.history else None,
        "steps_run": final and result.history[-1]["step"],
        "stopped_early": result.stopped_early,
        "interrupted": stopped is not None,
        "train_seconds": seconds,
        "tokens_per_second": tokens / seconds if seconds else None,
        "vocab_size": corpus.vocab_size,
        "text": args.text_file or "pydoc_data",
        "config": {k: v for k, v in vars(args).items() if k not in ("command", "argv")},
        "history": result.history,
    }


def write_outputs(args, corpus, result, seconds, tokens, stopped) -> Path:
    """``metrics.json`` and ``curves.png`` in ``--out`` (process 0 of a job
    only); returns the directory."""
    from jaxbp.plots import plot_curves

    out = Path(args.out)
    if not distributed.writes_files():
        return out
    out.mkdir(parents=True, exist_ok=True)
    metrics = text_metrics(args, corpus, result, seconds, tokens, stopped)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=list))
    title = f"text: {building.model_summary(args, 'cross_entropy')}"
    plot_curves(result.history, out / "curves.png", title=title)
    return out


def summary(args, result, rounds: int, seconds: float, tokens_per_second) -> str:
    """One line: the model, the steps this process trained (and where it
    resumed), the validation loss."""
    history = result.history
    steps = history[-1]["step"] if history else 0
    start = history[-rounds - 1]["step"] if len(history) > rounds else 0
    if not rounds:
        start = steps  # resumed a finished run: nothing left to train
    done = f"{steps - start} steps in {seconds:.1f}s (best step {result.best_step})"
    if args.resume and start:
        done = f"resumed from step {start} of {args.steps}; " + done
    val = (
        min(r["val_loss"] for r in history)
        if args.patience
        else history[-1]["val_loss"]
    )
    return (
        f"text: {building.model_summary(args, 'cross_entropy')}; {done}; "
        f"val loss {val:.4f} nats/char ({val / math.log(2):.3f} bits/char), "
        f"{tokens_per_second:,.0f} tokens/s"
    )
