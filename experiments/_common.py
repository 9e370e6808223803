"""What every experiment script shares, one helper each: flags, the JSON file,
the figure, the printed table, the relative error, a stopwatch.

Each script is ``python experiments/NAME.py [--quick] [--out DIR]``; it writes
``DIR/NAME.json`` (every number it measured) and ``DIR/NAME.png`` (its figure)
and prints a short table. ``--quick`` shrinks the run to finish in seconds on
2 CPU cores; the full run is what the README reports. Every script trains
through ``jaxbp.train`` (``fit``, ``sweep``, or ``make_step`` + ``run_steps``):
no training loop, step or shuffle of its own.

The table printer and the JSON encoder are the benchmarks' (``benchmarks/
report.py``), the interleaved timer is ``benchmarks/timing.py`` and the
fast-compile options are ``jaxbp.compilation``'s: one copy of each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.report import parse_args as _parse_args
from benchmarks.report import print_table, to_jsonable
from benchmarks.report import write_json as _write_json_file
from jaxbp.compilation import (
    FAST_COMPILE,
    compile_fast,
    fast_compile_xla_flags,
)

__all__ = [
    "FAST_COMPILE",
    "Timer",
    "compile_fast",
    "fast_compile_xla_flags",
    "figure_path",
    "parse_args",
    "print_table",
    "pyplot",
    "relative_error",
    "save_figure",
    "seed_grid",
    "to_jsonable",
    "write_json",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(name: str, description: str, argv=None) -> argparse.Namespace:
    """``--quick`` and ``--out DIR`` (default ``experiments/results``, its
    ``quick/`` with ``--quick``); ``args.name`` is ``name``."""
    return _parse_args(name, description, argv, results=DEFAULT_OUT)


def write_json(args, results: dict) -> Path:
    """Write ``DIR/NAME.json``: the results plus how they were made."""
    payload = {"experiment": args.name, "quick": bool(args.quick), **results}
    return _write_json_file(args.out / f"{args.name}.json", payload)


def relative_error(a, b) -> float:
    """max|a − b| / max(max|a|, max|b|) over every leaf of two pytrees of the same
    structure taken together (``check_grads``' measure on the whole tree)."""
    import numpy as np
    from jax.flatten_util import ravel_pytree

    from jaxbp.gradcheck import max_abs_and_relative_error

    flat_a = np.asarray(ravel_pytree(a)[0], np.float64)
    flat_b = np.asarray(ravel_pytree(b)[0], np.float64)
    return max_abs_and_relative_error(flat_a, flat_b)[1]


def seed_grid(n_seeds: int, values):
    """One run for every (seed, value) pair, seed-major: ``(seeds, tiled)`` where
    run ``i`` is ``fit(seed=seeds[i])`` trained with ``tiled[i]`` (pass ``seeds``
    to ``init_params`` and ``sweep``, ``tiled`` as ``sweep``'s ``hyperparams``);
    a result with a leading run axis reshapes to ``(n_seeds, len(values))``."""
    import numpy as np

    values = np.asarray(values)
    seeds = [s for s in range(n_seeds) for _ in values]
    return seeds, np.tile(values, n_seeds)


def figure_path(args) -> Path:
    return args.out / f"{args.name}.png"


def pyplot():
    """matplotlib.pyplot with a file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, dpi=90):
    """Save ``fig`` as a PNG with a 256-colour palette (plots need no more), which
    keeps the file a few times smaller than full RGB."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB").quantize(colors=256)
    image.save(path, format="png", optimize=True)


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
