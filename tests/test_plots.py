"""``curves.png``: whole phrases per title line, the best epoch (step) marked,
classifier (per-epoch) and language-model (per-step) histories."""

import itertools
import math

import pytest

from jaxbp.plots import (
    best_point,
    compact_count,
    curves_figure,
    plot_curves,
    title_lines,
)

#: What ``jaxbp train`` puts in the title: long enough to need two lines.
TITLE = (
    "digits: mlp 256-256 relu, input dropout 0.2, dropout 0.3, cross_entropy, "
    "adam (jaxbp) lr 0.001, batch 32, manual backprop"
)


def digits_history(epochs=12, best=7):
    """Per-epoch records whose validation loss is lowest at epoch ``best``."""
    return [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "val_loss": 0.1 + 0.01 * (e - best) ** 2,
            "val_accuracy": 0.9 + 0.005 * e,
            "train_accuracy": 0.9 + 0.008 * e,
        }
        for e in range(1, epochs + 1)
    ]


def text_history(steps=(200, 400, 600, 800, 1000), val=(2.5, 2.1, 1.9, 1.95, 2.0)):
    return [
        {"step": s, "train_loss": 3.0 - 0.001 * s, "val_loss": v}
        for s, v in zip(steps, val)
    ]


def best_lines(ax):
    return [line for line in ax.get_lines() if line.get_label().startswith("best ")]


def test_digits_history_two_panels_with_the_best_epoch_marked(tmp_path):
    history = digits_history()
    fig = curves_figure(history, title=TITLE)
    loss, accuracy = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    assert (loss.get_ylabel(), accuracy.get_ylabel()) == ("loss", "accuracy")
    for ax in fig.axes:
        labels = [line.get_label() for line in ax.get_lines()]
        assert labels == ["training", "validation", "best epoch 7"], labels
        (marker,) = best_lines(ax)
        assert list(marker.get_xdata()) == [7, 7]
    assert "best epoch 7" in [t.get_text() for t in loss.get_legend().get_texts()]
    plot_curves(history, tmp_path / "curves.png", title=TITLE)
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")


def test_text_history_is_loss_against_steps(tmp_path):
    history = text_history()
    fig = curves_figure(history, title="text: lstm 256, adam lr 0.002")
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step", "loss")
    train, val, marker = ax.get_lines()
    assert (train.get_label(), val.get_label()) == ("training", "validation")
    assert list(train.get_xdata()) == [200, 400, 600, 800, 1000]
    assert list(val.get_ydata()) == [2.5, 2.1, 1.9, 1.95, 2.0]
    assert marker.get_label() == "best step 600"
    ticks = [t for t in ax.get_xticks() if 200 <= t <= 1000]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert list(marker.get_xdata()) == [600, 600]
    plot_curves(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_few_epochs_have_whole_ticks():
    (loss, _) = curves_figure(digits_history(epochs=3, best=2)).axes
    assert all(float(t).is_integer() for t in loss.get_xticks())


def test_compact_count_labels():
    values = [0, 5, 9999, 10_000, 12_500, 200_000, 1_000_000, 1_500_000, -25_000]
    labels = [
        "0",
        "5",
        "9999",
        "10k",
        "12.5k",
        "200k",
        "1M",
        "1.5M",
        "\N{MINUS SIGN}25k",
    ]
    assert [compact_count(v) for v in values] == labels


@pytest.mark.parametrize("last", [40, 9_000, 200_000, 2_000_000])
def test_step_tick_labels_do_not_overlap(last):
    steps = list(range(0, last + 1, last // 20))
    fig = curves_figure(text_history(steps, [2.0] * len(steps)))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    shown = [t for t in ax.get_xticklabels() if t.get_text()]
    boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda b: b.x0)
    assert len(boxes) >= 4
    assert all(a.x1 < b.x0 for a, b in itertools.pairwise(boxes))


@pytest.mark.parametrize("history", [digits_history(), text_history()])
def test_the_title_breaks_only_between_phrases(history):
    fig = curves_figure(history, title=TITLE)
    lines = fig.get_suptitle().split("\n")
    assert len(lines) == (1 if len(fig.axes) == 2 else 2)  # one panel: too narrow
    assert " ".join(lines) == TITLE  # every break is after a ", "
    assert all(line.endswith(",") for line in lines[:-1])
    renderer = fig.canvas.get_renderer()
    extent = fig._suptitle.get_window_extent(renderer)
    assert extent.x0 >= 0 and extent.x1 <= fig.get_figwidth() * fig.dpi


def test_a_phrase_wider_than_the_figure_shrinks_the_font():
    fig = curves_figure(text_history(), title="x" * 300 + ", short")
    assert fig.get_suptitle().split("\n") == ["x" * 300 + ",", "short"]
    assert fig._suptitle.get_fontsize() < 10
    renderer = fig.canvas.get_renderer()
    assert fig._suptitle.get_window_extent(renderer).width <= fig.bbox.width


def test_title_lines_pack_greedily():
    fig = curves_figure(text_history())
    assert title_lines(fig, "a, b, c") == ["a, b, c"]
    assert title_lines(fig, "") == [""]


@pytest.mark.parametrize(
    "history, best",
    [
        (digits_history(best=3), 3),
        (text_history(), 600),
        ([{"epoch": 1, "train_loss": 1.0, "val_loss": None}], None),
        (
            [
                {"epoch": 1, "train_loss": 1.0, "val_loss": math.nan},
                {"epoch": 2, "train_loss": 1.0, "val_loss": 0.5},
            ],
            2,
        ),
    ],
)
def test_best_point_is_the_lowest_finite_validation_loss(history, best):
    assert best_point(history) == best


def test_log_scale_only_when_the_loss_spans_a_decade():
    assert curves_figure(digits_history()).axes[0].get_yscale() == "log"
    assert curves_figure(text_history()).axes[0].get_yscale() == "linear"


def test_no_validation_no_marker():
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": None} for e in (1, 2)]
    (ax,) = curves_figure(history).axes
    assert [line.get_label() for line in ax.get_lines()] == ["training"]


def test_the_png_has_the_pixels_of_a_default_savefig(tmp_path):
    """The compression level changes the file's bytes, not its picture."""
    import numpy as np
    from PIL import Image

    history = digits_history()
    plot_curves(history, tmp_path / "fast.png", title=TITLE)
    curves_figure(history, title=TITLE).savefig(tmp_path / "default.png")
    fast, default = (
        np.asarray(Image.open(tmp_path / n)) for n in ("fast.png", "default.png")
    )
    assert fast.shape == default.shape == (360, 1000, 4)
    np.testing.assert_array_equal(fast, default)
