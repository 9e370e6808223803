"""What a run needs after training, prepared in a background thread while it trains.

XLA compiles and runs programs without holding Python's lock, so while
``fit`` compiles and runs its epochs another thread can import matplotlib
and do its first-use work (for ``curves.png``) and compile the test split's
evaluation (``jaxbp.train.evaluate.compile_evaluate``): work that otherwise
adds to the run's wall time after training. Each task is done again where
its result is used (then at no cost), and that is where an error in it is
reported, so errors in the background are dropped.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Callable


def import_plotting() -> None:
    """Import what ``jaxbp.plots`` draws with, and do the first-use work
    that any thread's later drawing shares: the image plugins PIL loads on
    its first ``save``, and the grammar of matplotlib's mathtext parser
    (built on the first mathtext label, as a log axis' ``10^{-1}``).
    Drawing a throwaway figure here would do little more for the main
    thread: matplotlib keeps its fonts per thread and text sizes per
    figure."""
    for name in (
        "matplotlib.figure",
        "matplotlib.ticker",
        "matplotlib.backends.backend_agg",
        "jaxbp.plots",
    ):
        importlib.import_module(name)
    import PIL.Image
    from matplotlib.mathtext import MathTextParser

    PIL.Image.preinit()
    MathTextParser("agg").parse(r"$10^{-1}$", dpi=100)


@contextlib.contextmanager
def in_background(*tasks: Callable[[], object]):
    """Run ``tasks`` one after another in a daemon thread during the ``with``
    block; on leaving it, wait for them to finish."""

    def run():
        for task in tasks:
            try:
                task()
            except Exception:  # noqa: BLE001, S110 (done again, and reported, where used)
                pass

    thread = threading.Thread(target=run, name="jaxbp-warmup", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
