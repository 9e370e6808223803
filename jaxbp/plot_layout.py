"""Margins for a row of panels, from the sizes of the texts around them.

``Figure.tight_layout`` finds the margins by laying out every tick of every
axis (and leaves a layout engine behind that makes ``savefig`` lay them out
once more before drawing). The texts around a panel are few and their places
are fixed by matplotlib's rules, so the margins follow from their sizes:

* below: tick (outward length + pad), x tick labels, then the x label
  (``axes.labelpad`` below them) or the x offset text;
* left: tick, the widest y tick label (major or minor, as the axis' locators
  and formatters will label it), then the y label;
* above: the axes title (``axes.titlepad`` above the axes), and a y offset
  text under it when there is one;
* right: how far the last x tick label reaches past the axes' right edge.

The suptitle (if any) sits at the top of the figure; the panels' decorations
start one pad below it. The pad, between every two of these and at the
figure's edge, is ``tight_layout``'s: 1.08 font sizes. Texts are measured
with the figure's renderer, without drawing them.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

#: Space between texts, and between a text and the figure's edge, in font sizes.
PAD_FONTSIZES = 1.08


class Decorations(NamedTuple):
    """How far (pixels) a panel's texts reach past its axes on each side."""

    left: float
    right: float
    bottom: float
    top: float


def arrange_panels(fig, suptitle=None) -> None:
    """Set ``fig``'s subplot parameters so that the decorations of its axes
    (one row, as ``Figure.subplots(1, n)`` made them) and ``suptitle`` (the
    :class:`matplotlib.text.Text` of ``fig.suptitle``, or None) fit inside
    the figure, one pad apart. Leaves them as they are when the texts would
    leave the panels less than a fifth of the figure."""
    import matplotlib as mpl

    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    pad = PAD_FONTSIZES * mpl.rcParams["font.size"] * fig.dpi / 72
    axes = fig.axes
    n = len(axes)
    panel_width = (width - 2 * pad) / n
    for _ in range(2):  # overhangs depend on the panels' width, and back
        decorations = [decorations_of(ax, renderer, panel_width) for ax in axes]
        left = pad + decorations[0].left
        right = pad + decorations[-1].right
        gap = pad + max(
            (a.right + b.left for a, b in itertools.pairwise(decorations)),
            default=0.0,
        )
        panel_width = (width - left - right - (n - 1) * gap) / n
    top = pad + max(d.top for d in decorations)
    if suptitle is not None and suptitle.get_text():
        top += height - suptitle.get_window_extent(renderer).y0
    bottom = pad + max(d.bottom for d in decorations)
    if panel_width < 0.2 * width / n or height - top - bottom < 0.2 * height:
        return
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap / panel_width,
    )


def decorations_of(ax, renderer, panel_width: float) -> Decorations:
    """The reach of ``ax``'s tick labels, axis labels, offset texts and title
    past its edges, in pixels, were it ``panel_width`` pixels wide."""
    import matplotlib as mpl

    points = ax.figure.dpi / 72
    x_labels, x_offset = tick_labels(ax.xaxis, renderer)
    y_labels, y_offset = tick_labels(ax.yaxis, renderer)
    labelpad = ax.xaxis.labelpad * points
    below = _tick_space("xtick", points) + max((h for _, _, h in x_labels), default=0)
    widest = max((w for _, w, _ in y_labels), default=0.0)
    ylabel = _size(ax.yaxis.label, renderer)[0]
    xlabel = _size(ax.xaxis.label, renderer)[1]
    overhang_left, overhang_right = _x_overhangs(ax, x_labels, panel_width)
    return Decorations(
        left=max(
            _tick_space("ytick", points) + widest + labelpad + ylabel, overhang_left
        ),
        right=overhang_right,
        bottom=below
        + max(labelpad + xlabel, ax.xaxis.OFFSETTEXTPAD * points + x_offset),
        top=mpl.rcParams["axes.titlepad"] * points
        + _size(ax.title, renderer)[1]
        + y_offset,
    )


def tick_labels(axis, renderer):
    """``[(position, width, height)]`` of the tick labels ``axis`` will draw
    in its view (major and minor, formatted as the axis formats them), and
    the height of its offset text (0 without one); pixels, measured without
    making the tick artists."""
    lo, hi = sorted(axis.get_view_interval())
    slack = 1e-10 * (hi - lo)
    font = axis.offsetText.get_fontproperties()  # as the tick labels'
    labels = []
    for ticker, locs in (
        (axis.major, axis.get_majorticklocs()),
        (axis.minor, axis.get_minorticklocs()),
    ):
        for loc, label in zip(locs, ticker.formatter.format_ticks(list(locs))):
            if label and lo - slack <= loc <= hi + slack:
                labels.append((loc, *_text_size(axis.figure, label, font, renderer)))
    offset = axis.major.formatter.get_offset()
    return labels, _text_size(axis.figure, offset, font, renderer)[1] if offset else 0.0


def _tick_space(name: str, points: float) -> float:
    """Pixels from the spine to a tick label: the tick's outward length
    (as ``{name}.direction``) and the label's pad."""
    import matplotlib as mpl

    length = mpl.rcParams[f"{name}.major.size"]
    outward = {"out": 1.0, "inout": 0.5}.get(mpl.rcParams[f"{name}.direction"], 0.0)
    return (outward * length + mpl.rcParams[f"{name}.major.pad"]) * points


def _x_overhangs(ax, x_labels, panel_width: float) -> tuple[float, float]:
    """How far (pixels) the x tick labels reach past the axes' left and right
    edges, the axes being ``panel_width`` pixels wide."""
    lo, hi = ax.get_xlim()
    left = right = 0.0
    for loc, w, _ in x_labels if hi != lo else ():
        at = (loc - lo) / (hi - lo) * panel_width
        left = max(left, w / 2 - at)
        right = max(right, at + w / 2 - panel_width)
    return left, right


def _text_size(fig, text: str, font, renderer) -> tuple[float, float]:
    """Width and height (pixels) of ``text`` drawn in ``font`` in ``fig``."""
    artist = fig.text(0, 0, text, fontproperties=font)
    box = artist.get_window_extent(renderer)
    artist.remove()
    return box.width, box.height


def _size(text, renderer) -> tuple[float, float]:
    """Width and height (pixels) of a Text artist; zero when it is empty."""
    if not text.get_visible() or not text.get_text():
        return 0.0, 0.0
    box = text.get_window_extent(renderer)
    return box.width, box.height
