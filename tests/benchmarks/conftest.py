"""The benchmarks live outside the package, at the repository root: put the root
on ``sys.path`` so the tests import them as ``benchmarks.NAME``. Sections run
in their smallest configuration; no timing is asserted (noise), only what
the rows must hold whatever the machine."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.context import BenchContext


@pytest.fixture
def ctx():
    """Quick settings at their smallest: 3 repetitions of single calls, a 64²
    peak matmul."""
    return BenchContext.make(
        quick=True, reps=3, min_seconds=0.0, compile_reps=1, peak_n=64
    )
