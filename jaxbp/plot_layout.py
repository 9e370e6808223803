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
* right: how far the last x tick label reaches past the axes' right edge
  (and left: the first one past the left edge, when that is further).

The suptitle (if any) sits at the top of the figure; the panels' texts
start one pad below it. The pad, between every two of these and at the
figure's edge, is ``tight_layout``'s: 1.08 font sizes. Texts are measured
with the figure's renderer, without drawing them. Which ticks an axis
labels depends on its length, so the texts are measured again on the
panels the margins give, until the margins no longer change (two or three
rounds; if they still change after :data:`ROUNDS`, they make room for the
widest texts of every round).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

#: Space between texts, and between a text and the figure's edge, in font sizes.
PAD_FONTSIZES = 1.08

#: Rounds of measuring and placing the panels, at most.
ROUNDS = 3


class Decorations(NamedTuple):
    """How far (pixels) a panel's texts reach past its axes on each side."""

    left: float
    right: float
    bottom: float
    top: float


class TextSizes:
    """Sizes (pixels) of texts as ``fig``'s renderer lays them out, each
    string measured once (the rounds of :func:`arrange_panels` measure the
    same tick labels again)."""

    def __init__(self, fig):
        self.fig = fig
        self.renderer = fig.canvas.get_renderer()
        self._known = {}

    def width(self, text: str, font) -> float:
        """Width of one line of ``text`` in ``font`` (:func:`text_width`)."""
        key = ("width", text, font)
        if key not in self._known:
            self._known[key] = text_width(self.renderer, text, font)
        return self._known[key]

    def tick_label(self, axis, text: str) -> tuple[float, float]:
        """Width and height of ``text`` as a tick label of ``axis``."""
        font = axis.offsetText.get_fontproperties()  # as the tick labels'
        key = ("tick", text, font)
        if key not in self._known:
            artist = self.fig.text(0, 0, text, fontproperties=font)
            box = artist.get_window_extent(self.renderer)
            artist.remove()
            self._known[key] = box.width, box.height
        return self._known[key]

    def of(self, text) -> tuple[float, float]:
        """Width and height of a Text artist; zero when it is empty."""
        if not text.get_visible() or not text.get_text():
            return 0.0, 0.0
        box = text.get_window_extent(self.renderer)
        return box.width, box.height


def text_width(renderer, text: str, font) -> float:
    """Width (pixels) of one line of ``text`` in ``font`` as ``renderer``
    lays out a Text artist's (mathtext between ``$``), without drawing it."""
    from matplotlib.cbook import is_math_text

    return renderer.get_text_width_height_descent(text, font, is_math_text(text))[0]


def arrange_panels(fig, suptitle=None) -> None:
    """Set ``fig``'s subplot parameters so that the texts around its axes
    (one row, as ``Figure.subplots(1, n)`` made them) and ``suptitle`` (the
    :class:`matplotlib.text.Text` of ``fig.suptitle``, or None) fit inside
    the figure, one pad apart. Leaves them as they are when the texts would
    leave the panels less than a fifth of the figure."""
    sizes = TextSizes(fig)
    below_title = 0.0
    if suptitle is not None and suptitle.get_text():
        below_title = fig.bbox.height - suptitle.get_window_extent(sizes.renderer).y0
    rounds = []
    for _ in range(ROUNDS):
        rounds.append([decorations_of(ax, sizes) for ax in fig.axes])
        margins = subplot_margins(fig, rounds[-1], below_title)
        if margins is None or _already(fig, margins):
            return
        fig.subplots_adjust(**margins)
    widest = [
        Decorations(*(max(side) for side in zip(*panel))) for panel in zip(*rounds)
    ]
    margins = subplot_margins(fig, widest, below_title)  # room for every round's
    if margins is not None:
        fig.subplots_adjust(**margins)


def _already(fig, margins: dict) -> bool:
    """Whether ``fig``'s subplot parameters are ``margins``."""
    return all(abs(getattr(fig.subplotpars, k) - v) < 1e-9 for k, v in margins.items())


def subplot_margins(fig, decorations, below_title: float) -> dict | None:
    """``Figure.subplots_adjust`` arguments that leave one pad around the
    panels' ``decorations`` (left to right) and ``below_title`` pixels at the
    top; None when the panels would keep less than a fifth of the figure."""
    import matplotlib as mpl

    width, height = fig.bbox.width, fig.bbox.height
    pad = PAD_FONTSIZES * mpl.rcParams["font.size"] * fig.dpi / 72
    n = len(decorations)
    left = pad + decorations[0].left
    right = pad + decorations[-1].right
    gap = pad + max(
        (a.right + b.left for a, b in itertools.pairwise(decorations)),
        default=0.0,
    )
    top = below_title + pad + max(d.top for d in decorations)
    bottom = pad + max(d.bottom for d in decorations)
    panel_width = (width - left - right - (n - 1) * gap) / n
    if panel_width < 0.2 * width / n or height - top - bottom < 0.2 * height:
        return None
    return {
        "left": left / width,
        "right": 1 - right / width,
        "bottom": bottom / height,
        "top": 1 - top / height,
        "wspace": gap / panel_width,
    }


def decorations_of(ax, sizes: TextSizes) -> Decorations:
    """The reach of ``ax``'s tick labels, axis labels, offset texts and title
    past its edges, in pixels."""
    points = ax.figure.dpi / 72
    x_labels = tick_labels(ax.xaxis)
    x_ends = [
        (loc, *sizes.tick_label(ax.xaxis, label))
        for loc, label in sorted({min(x_labels), max(x_labels)} if x_labels else ())
    ]
    font = ax.yaxis.offsetText.get_fontproperties()  # as the tick labels'
    y_widths = [sizes.width(label, font) for _, label in tick_labels(ax.yaxis)]
    below = max(
        ax.xaxis.labelpad * points + sizes.of(ax.xaxis.label)[1],
        ax.xaxis.OFFSETTEXTPAD * points + _offset_size(ax.xaxis, sizes)[1],
    )
    overhang_left, overhang_right = x_overhangs(ax, x_ends)
    return Decorations(
        left=max(
            overhang_left,
            _tick_space("ytick", points)
            + max(y_widths, default=0.0)
            + ax.yaxis.labelpad * points
            + sizes.of(ax.yaxis.label)[0],
        ),
        right=overhang_right,
        bottom=_tick_space("xtick", points)
        + max((h for *_, h in x_ends), default=0.0)
        + below,
        top=_above(ax, sizes),
    )


def _above(ax, sizes: TextSizes) -> float:
    """How far (pixels) the axes title, and the y offset text at the axes'
    top left, reach above ``ax``: the title goes above the offset text when
    they would overlap (``Axes._update_title_position``)."""
    import matplotlib as mpl

    points = ax.figure.dpi / 72
    title_width, title_height = sizes.of(ax.title)
    title = mpl.rcParams["axes.titlepad"] * points + title_height
    offset = _offset_size(ax.yaxis, sizes)
    if not offset[0]:
        return title
    above = ax.yaxis.OFFSETTEXTPAD * points + offset[1]
    title_left = ax.title.get_position()[0] * ax.bbox.width - title_width / 2
    if title_width and offset[0] > title_left:
        return above + title_height
    return max(title, above)


def tick_labels(axis) -> list[tuple[float, str]]:
    """``[(position, label)]`` of the tick labels ``axis`` will draw in its
    view (major then minor, formatted as the axis formats them; empty labels
    left out), found without making the tick artists."""
    lo, hi = sorted(axis.get_view_interval())
    slack = 1e-10 * (hi - lo)
    labels = []
    for ticker, locs in (
        (axis.major, axis.get_majorticklocs()),
        (axis.minor, axis.get_minorticklocs()),
    ):
        for loc, label in zip(locs, ticker.formatter.format_ticks(list(locs))):
            if label and lo - slack <= loc <= hi + slack:
                labels.append((float(loc), label))
    return labels


def x_overhangs(ax, x_ends) -> tuple[float, float]:
    """How far (pixels) the x tick labels ``x_ends`` (``(position, width,
    height)``) reach past ``ax``'s left and right edges."""
    lo, hi = ax.get_xlim()
    panel_width = ax.bbox.width
    left = right = 0.0
    for loc, w, _ in x_ends if hi != lo else ():
        at = (loc - lo) / (hi - lo) * panel_width
        left = max(left, w / 2 - at)
        right = max(right, at + w / 2 - panel_width)
    return left, right


def _tick_space(name: str, points: float) -> float:
    """Pixels from the spine to a tick label: the tick's outward length
    (as ``{name}.direction``) and the label's pad."""
    import matplotlib as mpl

    length = mpl.rcParams[f"{name}.major.size"]
    outward = {"out": 1.0, "inout": 0.5}.get(mpl.rcParams[f"{name}.direction"], 0.0)
    return (outward * length + mpl.rcParams[f"{name}.major.pad"]) * points


def _offset_size(axis, sizes: TextSizes) -> tuple[float, float]:
    """Width and height (pixels) of the offset text ``axis`` will draw (0
    without one); valid after :func:`tick_labels` formatted its ticks."""
    offset = axis.major.formatter.get_offset()
    return sizes.tick_label(axis, offset) if offset else (0.0, 0.0)
