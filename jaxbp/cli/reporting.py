"""What ``jaxbp train`` shows while and after it trains: the progress bar
(``compiling`` until the first record; epochs, or steps for text runs) and
the pieces of the summary line."""

from __future__ import annotations

import sys

from jaxbp.cli import distributed, resuming
from jaxbp.cli.interrupts import Interrupts


def progress_bar(args):
    """``(on_record callback, close)``: a tqdm bar on stderr, or nothing.

    It counts epochs, or optimizer steps for ``--dataset text`` (whose
    records are ``{"step", "train_loss", "val_loss"}``), and says
    ``compiling`` until the first record. A resumed run's bar starts at
    the newest checkpoint's epoch (step), so a finished run shows full; each
    record then moves it to the record's epoch (step).
    """
    if args.quiet or not distributed.writes_files():
        return None, lambda: None
    from tqdm import tqdm

    unit, total = progress_unit(args)
    initial = min(resumed_position(args, unit), total)
    bar = tqdm(
        total=total,
        initial=initial,
        unit=unit,
        desc="compiling" if initial < total else "finished",
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def on_record(record):
        bar.set_description("training", refresh=False)
        bar.set_postfix(bar_postfix(record), refresh=False)
        bar.update(record[unit] - bar.n)

    return on_record, bar.close


def progress_unit(args) -> tuple[str, int]:
    """``("step", --steps)`` for a text run, else ``("epoch", --epochs)``."""
    unit = resuming.progress_unit(args)
    return unit, args.steps if unit == "step" else args.epochs


def resumed_position(args, unit: str) -> int:
    """The epoch (step) a ``--resume`` continues from; 0 for a fresh run.
    (Should the newest checkpoint be unreadable beyond its metadata, fit
    resumes from an older one and the first record moves the bar back.)"""
    if not (args.resume and args.checkpoint_dir):
        return 0
    return resuming.resumed_position(args.checkpoint_dir, unit)


def bar_postfix(record) -> dict:
    """The bar's postfix: ``loss``, and ``val_acc`` (classifiers) or
    ``val_loss`` (language models) when recorded, 4 decimals."""
    postfix = {"loss": f"{record['train_loss']:.4f}"}
    if record.get("val_accuracy") is not None:
        postfix["val_acc"] = f"{record['val_accuracy']:.4f}"
    elif "step" in record and record.get("val_loss") is not None:
        postfix["val_loss"] = f"{record['val_loss']:.4f}"
    return postfix


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def done_summary(
    args, result, trained: int, resumed: int | None, seconds: float
) -> str:
    """``"[resumed from epoch N of M; ]K epochs in Ts (best epoch B)"``, and
    ``"compiling Cs"`` in the parentheses when the run compiled programs."""
    compiling = result.compile_seconds
    note = f"compiling {compiling:.1f}s; " if compiling else ""
    done = (
        f"{_epochs(trained)} in {seconds:.1f}s ({note}best epoch {result.best_epoch})"
    )
    if resumed is None:
        return done
    return f"resumed from epoch {resumed} of {args.epochs}; {done}"


def test_summary(test) -> str:
    test_loss, test_accuracy = test
    summary = f"test loss {test_loss:.4f}"
    if test_accuracy is not None:
        summary += f", test accuracy {test_accuracy:.4f}"
    return summary


def train_with_progress(args, train):
    """``train(on_record, interrupts)`` with what every training run has:
    ``flags.json`` beside a fresh run's checkpoints, the progress bar, and
    Ctrl-C / SIGTERM caught (training stops after its epoch or round). In a
    multi-process job only process 0 writes ``flags.json`` and shows the bar.
    Returns ``(train's result, records this process trained, signal or None)``."""
    fresh = args.checkpoint_dir is not None and not args.resume
    if fresh and distributed.writes_files():
        resuming.record_flags(args)
    show, close = progress_bar(args)
    trained = []

    def on_record(record):
        trained.append(record)
        if show is not None:
            show(record)

    try:
        with Interrupts() as interrupts:
            outputs = train(on_record, interrupts)
    finally:
        close()
    return outputs, len(trained), interrupts.signal
