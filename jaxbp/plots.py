"""Training curves: loss (and accuracy, when recorded) against epoch or step,
training and validation, with the best point (lowest validation loss) marked.

Two kinds of history are drawn: a classifier's per-epoch records
``{"epoch", "train_loss", "val_loss", "val_accuracy", "train_accuracy"}``
(``jaxbp.train.fit``) and a language model's per-evaluation records
``{"step", "train_loss", "val_loss"}`` (``jaxbp.train.fit_language_model``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from jaxbp.plot_layout import arrange_panels, text_width

#: The suptitle's font size (points); it shrinks to fit only when one of the
#: title's phrases alone is wider than the figure.
TITLE_FONTSIZE = 10

#: zlib level of the PNG's deflate stream: the pixels are the same at every
#: level; below PIL's default (6) the file is written faster and only a little
#: larger (a curve plot is mostly flat colour).
PNG_COMPRESS_LEVEL = 3


def _finite(values):
    return [v if v is not None and math.isfinite(v) else math.nan for v in values]


def x_axis(history: Sequence[dict]) -> str:
    """``"epoch"`` or ``"step"``: the key the records are counted by."""
    if history and "epoch" not in history[0] and "step" in history[0]:
        return "step"
    return "epoch"


def best_point(history: Sequence[dict]) -> int | None:
    """The epoch (or step) of the lowest finite validation loss; None without one."""
    key = x_axis(history)
    scored = [
        (r["val_loss"], r[key])
        for r in history
        if r.get("val_loss") is not None and math.isfinite(r["val_loss"])
    ]
    return min(scored)[1] if scored else None


def compact_count(value: float, _position=None) -> str:
    """An epoch or step count as a tick label: as it is below 10,000, else in
    thousands or millions (``200k``, ``1.5M``), so six-digit steps do not run
    into each other; a minus sign as matplotlib writes it."""
    if abs(value) >= 1e6:
        label = f"{value / 1e6:g}M"
    elif abs(value) >= 1e4:
        label = f"{value / 1e3:g}k"
    else:
        label = f"{value:g}"
    return label.replace("-", "\N{MINUS SIGN}")


def _spans_a_decade(history) -> bool:
    """Whether the finite positive losses span a factor of 10 (log scale then)."""
    losses = [
        v
        for r in history
        for v in (r.get("train_loss"), r.get("val_loss"))
        if v is not None and math.isfinite(v) and v > 0
    ]
    return bool(losses) and max(losses) > 10 * min(losses)


def curves_figure(history: Sequence[dict], *, title: str = ""):
    """The :class:`matplotlib.figure.Figure` that :func:`plot_curves` saves:
    a loss panel (log scale) and, when accuracies are recorded, an accuracy
    panel; the best epoch (step) a dotted vertical line on each, labelled in
    the loss panel's legend; the margins from the sizes of the texts around
    the panels (:func:`jaxbp.plot_layout.arrange_panels`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    key = x_axis(history)
    xs = [r[key] for r in history]
    has_accuracy = any(
        r.get(k) is not None
        for r in history
        for k in ("val_accuracy", "train_accuracy")
    )
    ncols = 2 if has_accuracy else 1
    fig = Figure(figsize=(5 * ncols, 3.6), dpi=100)
    FigureCanvasAgg(fig)  # renders PNGs, and measures the title's text
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    panels = [(axes[0], "loss", ("train_loss", "val_loss"))]
    if has_accuracy:
        panels.append((axes[1], "accuracy", ("train_accuracy", "val_accuracy")))
    best = best_point(history)
    for ax, quantity, keys in panels:
        for k, label in zip(keys, ("training", "validation")):
            if any(r.get(k) is not None for r in history):
                ax.plot(xs, _finite(r.get(k) for r in history), label=label)
        if best is not None:
            ax.axvline(best, color="0.3", linestyle=":", label=f"best {key} {best}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs/steps
        ax.xaxis.set_major_formatter(FuncFormatter(compact_count))
        ax.set_xlabel(key)
        ax.set_ylabel(quantity)
        ax.set_title(quantity)
        ax.grid(alpha=0.3)
        ax.legend()
    if _spans_a_decade(history):
        axes[0].set_yscale("log")
    arrange_panels(fig, _fit_title(fig, title) if title else None)
    return fig


def plot_curves(history: Sequence[dict], path, *, title: str = "") -> None:
    """Write :func:`curves_figure` of ``history`` as a PNG to ``path``
    (deflated at zlib level :data:`PNG_COMPRESS_LEVEL`)."""
    curves_figure(history, title=title).savefig(
        path, format="png", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL}
    )


def title_lines(fig, title: str, fontsize: float = TITLE_FONTSIZE) -> list[str]:
    """``title`` broken after a ``", "`` into lines no wider than ``fig``
    (greedy; each line but the last ends with its comma; a phrase wider than
    the figure stays whole on its own line)."""
    width = fig.get_figwidth() * fig.dpi * 0.96
    phrases = title.split(", ")
    phrases = [p + "," for p in phrases[:-1]] + phrases[-1:]
    lines: list[str] = []
    for phrase in phrases:
        joined = f"{lines[-1]} {phrase}" if lines else phrase
        if lines and _text_width(fig, joined, fontsize) <= width:
            lines[-1] = joined
        else:
            lines.append(phrase)
    return lines


def _fit_title(fig, title: str):
    """The suptitle (returned) in whole phrases; smaller when a phrase alone
    is too wide."""
    lines = title_lines(fig, title)
    width = fig.get_figwidth() * fig.dpi * 0.96
    fontsize = TITLE_FONTSIZE
    for _ in range(5):  # glyph widths do not scale exactly with the size
        widest = max(_text_width(fig, line, fontsize) for line in lines)
        if widest <= width:
            break
        fontsize *= 0.98 * width / widest
    return fig.suptitle("\n".join(lines), fontsize=fontsize)


def _text_width(fig, text: str, fontsize: float) -> float:
    """Rendered width of one line of ``text`` in pixels at ``fontsize`` in
    ``fig`` (:func:`jaxbp.plot_layout.text_width`)."""
    from matplotlib.font_manager import FontProperties

    return text_width(fig.canvas.get_renderer(), text, FontProperties(size=fontsize))
