"""jaxbp.plot_layout: the panels of ``curves.png`` and the texts around them
fit in the figure without overlapping, where ``tight_layout`` would put them,
for one and two panels, linear and log loss axes, no title and titles of one
to three lines."""

import itertools
import math

import pytest

from jaxbp.plot_layout import PAD_FONTSIZES, tick_labels
from jaxbp.plots import curves_figure

#: What ``jaxbp train`` puts in the title: one line over two panels, two over one.
TITLE = (
    "digits: mlp 256-256 relu, input dropout 0.2, dropout 0.3, cross_entropy, "
    "adam (jaxbp) lr 0.001, batch 32, manual backprop"
)
#: Three lines over one panel.
LONG_TITLE = (
    "text: gpt 4 layers, 4 heads, width 128, block 64, cross_entropy, "
    "adamw (jaxbp) lr 0.003 cosine to 0.0003 after 100 warm-up steps, batch 32, "
    "manual backprop"
)


def digits(epochs, train_loss, val_loss):
    return [
        {
            "epoch": e,
            "train_loss": train_loss(e),
            "val_loss": val_loss(e),
            "val_accuracy": 0.9 + 0.09 * (1 - math.exp(-e / 5)),
            "train_accuracy": 0.9 + 0.0999 * (1 - math.exp(-e / 3)),
        }
        for e in range(1, epochs + 1)
    ]


def steps(train_loss, val_loss, n=40, every=50):
    return [
        {"step": every * s, "train_loss": train_loss(s), "val_loss": val_loss(s)}
        for s in range(1, n + 1)
    ]


HISTORIES = {
    "two panels, log loss": digits(50, lambda e: 1.7 / e, lambda e: 0.4 / e**0.5),
    "two panels, linear loss": digits(200, lambda e: 0.1 - 2e-4 * e, lambda e: 0.08),
    # a decade and a bit: minor ticks labelled (2x10^-1, 3x10^-1, ...)
    "three epochs, log loss": digits(3, lambda e: 1.66 / e**1.35, lambda e: 0.35 / e),
    "one panel, linear loss": steps(
        lambda s: 1.4 + 2.8 * math.exp(-s / 6), lambda s: 1.6
    ),
    "one panel, log loss": steps(lambda s: 40 / s, lambda s: 30 / s),
    # ticks 2.30002, 2.30004, ... are labelled as an offset (+2.3) and deltas
    "one panel, offset text": steps(lambda s: 2.3 + 1e-6 * s, lambda s: 2.3001),
    "one panel, 200k steps": steps(lambda s: 3 / s**0.2, lambda s: 2, every=5000),
}


def drawn(history, title):
    """The figure drawn as its PNG would be, with its renderer."""
    fig = curves_figure(history, title=title)
    fig.canvas.draw()
    return fig, fig.canvas.get_renderer()


@pytest.mark.parametrize("title", ["", TITLE, LONG_TITLE])
@pytest.mark.parametrize("name", HISTORIES)
def test_every_text_is_inside_the_figure_and_below_the_title(name, title):
    fig, renderer = drawn(HISTORIES[name], title)
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]  # labels, title, legend
    for box in boxes:
        assert box.x0 >= -0.5 and box.y0 >= -0.5, (name, box)
        assert box.x1 <= fig.bbox.width + 0.5 and box.y1 <= fig.bbox.height + 0.5
    for left, right in itertools.pairwise(boxes):
        assert left.x1 <= right.x0, (name, left, right)
    if title:
        suptitle = fig._suptitle.get_window_extent(renderer)
        assert suptitle.y1 <= fig.bbox.height and suptitle.x0 >= 0
        assert all(box.y1 <= suptitle.y0 for box in boxes), (name, boxes, suptitle)


@pytest.mark.parametrize("title", ["", TITLE])
@pytest.mark.parametrize("name", HISTORIES)
def test_the_panels_fill_the_figure_as_tight_layout_would(name, title):
    """Within a few pixels of where ``Figure.tight_layout`` puts them: one
    pad between the texts and the figure's edges, the suptitle and each other."""
    fig, _ = drawn(HISTORIES[name], title)
    reference = curves_figure(HISTORIES[name], title=title)
    reference.tight_layout()
    width, height = fig.bbox.width, fig.bbox.height
    ours, theirs = fig.subplotpars, reference.subplotpars
    for side, scale in (("left", width), ("right", width), ("bottom", height)):
        assert getattr(ours, side) * scale == pytest.approx(
            getattr(theirs, side) * scale, abs=3
        ), side
    # the axes title's descent (4 px): free above the axes here; tight_layout
    # leaves it free between the suptitle and the panels instead
    assert ours.top * height == pytest.approx(theirs.top * height, abs=4.5)
    assert ours.wspace == pytest.approx(theirs.wspace, abs=0.01)


@pytest.mark.parametrize("rounds", [1, 2])
def test_margins_that_have_not_settled_make_room_for_every_round(monkeypatch, rounds):
    """Cut short, the rounds still leave every text inside the figure, with
    margins no narrower than the settled ones."""
    from jaxbp import plot_layout

    monkeypatch.setattr(plot_layout, "ROUNDS", rounds)
    history = HISTORIES["two panels, linear loss"]
    fig, renderer = drawn(history, TITLE)
    for box in (ax.get_tightbbox(renderer) for ax in fig.axes):
        assert box.x0 >= -0.5 and box.y0 >= -0.5
        assert box.x1 <= fig.bbox.width + 0.5
    monkeypatch.setattr(plot_layout, "ROUNDS", 3)
    settled = curves_figure(history, title=TITLE).subplotpars
    assert fig.subplotpars.left >= settled.left - 1e-9
    assert fig.subplotpars.bottom >= settled.bottom - 1e-9


def test_the_figure_keeps_no_layout_engine():
    """savefig lays a figure with a layout engine out again before drawing it."""
    fig = curves_figure(HISTORIES["two panels, log loss"], title=TITLE)
    assert fig.get_layout_engine() is None


def test_a_pad_is_a_font_size_and_a_bit():
    import matplotlib as mpl

    fig, renderer = drawn(HISTORIES["one panel, linear loss"], "")
    pad = PAD_FONTSIZES * mpl.rcParams["font.size"] * fig.dpi / 72
    box = fig.axes[0].get_tightbbox(renderer)
    assert box.x0 == pytest.approx(pad, abs=1)  # the y label's left edge
    assert box.y0 == pytest.approx(pad, abs=1)  # the x label's bottom edge


def drawn_tick_labels(axis):
    """The texts of the tick labels a draw left on ``axis``, in its view."""
    lo, hi = sorted(axis.get_view_interval())
    return sorted(
        text.get_text()
        for minor in (False, True)
        for loc, text in zip(
            axis.get_ticklocs(minor=minor), axis.get_ticklabels(minor=minor)
        )
        if lo <= loc <= hi and text.get_text()
    )


@pytest.mark.parametrize("name", HISTORIES)
def test_tick_labels_are_the_ones_drawn(name):
    fig, _ = drawn(HISTORIES[name], "")
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            measured = sorted(label for _, label in tick_labels(axis))
            assert measured == drawn_tick_labels(axis), (name, axis.axis_name)
