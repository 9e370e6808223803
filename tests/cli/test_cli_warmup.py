"""jaxbp.cli.warmup: work done in a background thread while training runs."""

import threading

import pytest
from helpers import python_child

from jaxbp.cli import warmup


def test_tasks_run_in_another_thread_and_are_done_on_leaving():
    threads = []
    with warmup.in_background(lambda: threads.append(threading.get_ident())):
        pass
    assert threads and threads[0] != threading.get_ident()


def test_a_failing_task_is_dropped_and_the_next_still_runs():
    done = []

    def fails():
        raise RuntimeError("repeated where it is used")

    with warmup.in_background(fails, lambda: done.append(True)):
        pass
    assert done == [True]


def test_an_error_in_the_block_is_not_hidden():
    block = warmup.in_background(lambda: None)
    with pytest.raises(ValueError, match="the block's own"), block:
        raise ValueError("the block's own")


def test_import_plotting_imports_what_the_plots_use():
    import sys

    warmup.import_plotting()
    assert "matplotlib.backends.backend_agg" in sys.modules


def test_import_plotting_leaves_the_first_use_work_done_for_every_thread():
    """In a fresh interpreter, after ``import_plotting`` ran in another
    thread: PIL's image plugins are loaded and mathtext's grammar is built
    (what the main thread's first ``savefig`` of a log axis would do)."""
    script = (
        "import sys, threading\n"
        "from jaxbp.cli import warmup\n"
        "from matplotlib.mathtext import MathTextParser\n"
        "assert MathTextParser._parser is None\n"
        "thread = threading.Thread(target=warmup.import_plotting)\n"
        "thread.start(); thread.join()\n"
        "assert MathTextParser._parser is not None\n"
        "assert 'PIL.JpegImagePlugin' in sys.modules\n"
        "assert 'jaxbp.plots' in sys.modules\n"
    )
    result = python_child(script)
    assert result.returncode == 0, result.stderr
