"""Benchmark: manual vs autodiff gradients, the matmul peak, memory, checkpointing.

``python experiments/benchmark.py [--quick] [--out DIR]`` prints a table per
section and writes ``DIR/benchmark.json`` (every number, with the machine it
was measured on). The measuring code is ``jaxbp.bench`` (also ``jaxbp bench``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from jaxbp import bench

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        out = DEFAULT_OUT / ("quick" if "--quick" in argv else "")
        argv += ["--out", str(out)]
    return bench.main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
