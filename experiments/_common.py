"""What every experiment script shares: flags, output files, a printed table.

Each script is ``python experiments/NAME.py [--quick] [--out DIR]``; it writes
``DIR/NAME.json`` (every number it measured) and ``DIR/NAME.png`` (its figure)
and prints a short table. ``--quick`` shrinks the run to finish in under
30 seconds on 2 CPU cores; the full run is what the README reports.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(name: str, description: str, argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"experiments/{name}.py", description=description
    )
    parser.add_argument("--quick", action="store_true", help="a small run (< 30 s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"output directory (default {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    args.name = name
    if args.out is None:
        args.out = DEFAULT_OUT / ("quick" if args.quick else "")
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json(args, results: dict) -> Path:
    """Write ``DIR/NAME.json`` with the results plus how they were made."""
    path = args.out / f"{args.name}.json"
    payload = {"experiment": args.name, "quick": bool(args.quick), **results}
    path.write_text(json.dumps(_jsonable(payload), indent=2))
    return path


def figure_path(args) -> Path:
    return args.out / f"{args.name}.png"


def pyplot():
    """matplotlib.pyplot with a file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def print_table(
    header: Sequence[str], rows: Sequence[Sequence], title: str = ""
) -> None:
    """Print rows as an aligned text table (floats with 4 significant digits)."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [list(map(str, header))] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    if title:
        print(title)
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


class Timer:
    """``with Timer() as t: ...``; ``t.seconds`` afterwards."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# ------------------------------------------------------------------ compiling

#: XLA:CPU options for programs that run briefly on small arrays, where
#: compiling is most of the cost: no LLVM optimization, and the classic loop
#: emitters instead of the fusion emitters. 3-6x faster compiles; the same
#: operations, but not always bit for bit the same results: elementwise
#: functions compiled without optimization can differ in the last bit (e.g.
#: 5% of the entries of ``jax.random.normal``, by 1-2 ulp). (A script whose
#: every compilation should use them puts them in ``XLA_FLAGS`` before
#: importing jax: :func:`fast_compile_xla_flags`.)
FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}


def fast_compile_xla_flags(existing: str = "") -> str:
    """``XLA_FLAGS`` with :data:`FAST_COMPILE` appended to ``existing``: for a
    process whose every compilation should use them (set before jax starts)."""
    flags = [f"--{k}={str(v).lower()}" for k, v in FAST_COMPILE.items()]
    return " ".join([existing, *flags]).strip()


def compile_fast(fn, *args, fast: bool = True):
    """``jax.jit(fn)`` lowered for ``args`` and compiled, with :data:`FAST_COMPILE`
    when ``fast`` (falling back to the defaults on an XLA without one of them)."""
    import jax

    lowered = jax.jit(fn).lower(*args)
    if not fast:
        return lowered.compile()
    try:
        return lowered.compile(FAST_COMPILE)
    except jax.errors.JaxRuntimeError:  # an XLA without one of these options
        return lowered.compile()


# ------------------------------------------------------------------ training


def batch_indices(seed: int, n: int, batch: int, epochs: int) -> np.ndarray:
    """(epochs * n // batch, batch) example indices: a fresh permutation every
    epoch, cut into ``n // batch`` batches (the remainder is left out that
    epoch), from NumPy's generator seeded with ``seed``."""
    rng = np.random.default_rng(seed)
    steps = n // batch
    order = [rng.permutation(n)[: steps * batch] for _ in range(epochs)]
    return np.concatenate(order).reshape(epochs * steps, batch).astype(np.int32)


def initial_params(model, seeds: int):
    """(params, state): each seed's initial parameters stacked on a leading axis,
    drawn with the init key ``fit(seed=s)`` uses (so run ``s`` starts where
    ``jaxbp.train.fit(seed=s)`` starts), and the model state (the same for every
    seed). Eager ``init_with_state`` calls: their compiled random draws are
    cached for the next seed, and it avoids ``model.init_state()``, which
    draws a whole set of parameters op by op just to get the state."""
    import jax
    import jax.numpy as jnp

    from jaxbp.train import train_keys

    runs = [
        model.init_with_state(train_keys(jax.random.key(s))[0]) for s in range(seeds)
    ]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[p for p, _ in runs])
    return params, runs[0][1]


# ------------------------------------------------------------------ figures


def save_figure(fig, path, dpi=90):
    """Save ``fig`` as a PNG with a 256-colour palette (plots need no more), which
    keeps the file a few times smaller than full RGB."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(buffer).convert("RGB").quantize(colors=256)
    image.save(path, format="png", optimize=True)
