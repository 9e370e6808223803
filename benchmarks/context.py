"""The settings of one benchmark run, and what its sections share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

#: The size of the square float32 matmul that stands for the peak FLOP rate.
PEAK_N = 2048


@dataclasses.dataclass
class BenchContext:
    """Settings of a run (repetitions, seconds per sample, compilations timed,
    the peak matmul's size), a log for progress lines, and results shared
    between sections (``shared["peak_gflops"]``, set by the matmul section)."""

    quick: bool = False
    reps: int = 31
    min_seconds: float = 0.02
    compile_reps: int = 3
    peak_n: int = PEAK_N
    log: Callable[[str], None] | None = None
    shared: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool = False, **kwargs) -> BenchContext:
        """The full settings, or the quick ones (fewer, shorter repetitions);
        ``kwargs`` override either."""
        if quick:
            defaults = {"reps": 9, "min_seconds": 0.005, "compile_reps": 1}
        else:
            defaults = {"reps": 31, "min_seconds": 0.02, "compile_reps": 3}
        defaults.update(kwargs)
        return cls(quick=quick, **defaults)

    def say(self, message: str) -> None:
        """Log a progress line (when a log is set)."""
        if self.log is not None:
            self.log(message)
