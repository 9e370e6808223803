"""Training curves: loss and accuracy against epoch, training and validation."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _finite(values):
    return [v if v is not None and math.isfinite(v) else math.nan for v in values]


def plot_curves(history: Sequence[dict], path, *, title: str = "") -> None:
    """Write a PNG with two panels: loss (train, val) and accuracy (train, val)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    has_accuracy = any(r.get("val_accuracy") is not None for r in history) or any(
        r.get("train_accuracy") is not None for r in history
    )
    ncols = 2 if has_accuracy else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5 * ncols, 3.6), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, _finite(r["train_loss"] for r in history), label="training")
    if any(r.get("val_loss") is not None for r in history):
        ax.plot(epochs, _finite(r.get("val_loss") for r in history), label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    if has_accuracy:
        ax = axes[0, 1]
        for key, label in (
            ("train_accuracy", "training"),
            ("val_accuracy", "validation"),
        ):
            if any(r.get(key) is not None for r in history):
                ax.plot(epochs, _finite(r.get(key) for r in history), label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_title("accuracy")
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 45 * ncols), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
