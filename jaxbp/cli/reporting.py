"""What ``jaxbp train`` shows while and after it trains: the progress bar
(``compiling`` until the first epoch) and the pieces of the summary line."""

from __future__ import annotations

import sys


def progress_bar(args):
    """``(on_epoch callback, close)``: a tqdm bar over epochs on stderr, or nothing."""
    if args.quiet:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(
        total=args.epochs,
        unit="epoch",
        desc="compiling",  # until the first epoch is done
        dynamic_ncols=True,
        file=sys.stderr,
    )

    def on_epoch(record):
        bar.set_description("training", refresh=False)
        postfix = {"loss": f"{record['train_loss']:.4f}"}
        if record.get("val_accuracy") is not None:
            postfix["val_acc"] = f"{record['val_accuracy']:.4f}"
        bar.set_postfix(postfix, refresh=False)
        bar.update(record["epoch"] - bar.n)

    return on_epoch, bar.close


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def done_summary(
    args, result, trained: int, resumed: int | None, seconds: float
) -> str:
    """``"[resumed from epoch N of M; ]K epochs in Ts (best epoch B)"``."""
    done = f"{_epochs(trained)} in {seconds:.1f}s (best epoch {result.best_epoch})"
    if resumed is None:
        return done
    return f"resumed from epoch {resumed} of {args.epochs}; {done}"


def test_summary(test) -> str:
    test_loss, test_accuracy = test
    summary = f"test loss {test_loss:.4f}"
    if test_accuracy is not None:
        summary += f", test accuracy {test_accuracy:.4f}"
    return summary
