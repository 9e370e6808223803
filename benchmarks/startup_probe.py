"""One fresh ``jaxbp train`` process with its time split into phases: the child
of ``benchmarks/startup.py``.

``python benchmarks/startup_probe.py OUT.json ARGS...`` runs ``jaxbp ARGS``
as ``python -m jaxbp`` does (``jaxbp.cli.main``, then ``os._exit`` once the
output is flushed) and writes to
``OUT.json`` the seconds since this script started at which each phase
ended (``imported``: ``jax`` and ``jaxbp.cli`` imported; ``prepared``: flags
checked, data loaded, model built, when training starts; ``trained``: fit and
the test evaluation done; ``written``: ``metrics.json`` and ``curves.png``
written) and the spans JAX reports for making programs in the main thread:
tracing, lowering to MLIR, and XLA's compile or persistent-cache load
(``jaxbp.compilation``'s events), each with the function's name.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json
import os
import sys
import threading


def main(out: str, argv: list[str]) -> int:
    import jax.monitoring  # the import of jax is part of the timed phase

    from jaxbp import compilation, executable_cache

    events = {
        compilation.TRACE_EVENT: "trace",
        executable_cache.KEY_EVENT: "key",
        compilation.LOWER_EVENT: "lower",
        compilation.COMPILE_EVENT: "compile",
        executable_cache.LOAD_EVENT: "compile",
    }
    main_thread, spans, marks = threading.get_ident(), [], {}

    def on_span(event, start, end, **kwargs):
        if event in events and threading.get_ident() == main_thread:
            spans.append((events[event], kwargs.get("fun_name", "?"), start, end))

    jax.monitoring.register_event_time_span_listener(on_span)
    import jaxbp.cli
    import jaxbp.cli.train as cli_train

    marks["imported"] = time.perf_counter() - STARTED
    _mark_around(cli_train, "fit_and_test", marks, "prepared", "trained")
    _mark_around(cli_train, "write_outputs", marks, None, "written")
    code = jaxbp.cli.main(argv)
    # JAX reports spans in time.time(); the phases are perf_counter seconds
    # since STARTED: convert with the offset between the two clocks now.
    offset = time.time() - (time.perf_counter() - STARTED)
    rows = [(kind, name, a - offset, b - offset) for kind, name, a, b in spans]
    with open(out, "w") as f:
        json.dump({"exit": code, "marks": marks, "spans": rows}, f)
    return code


def _mark_around(module, name, marks, before, after):
    """Record the seconds since start at which ``module.name`` is entered
    (as ``before``) and left (as ``after``)."""
    original = getattr(module, name)

    def timed(*args, **kwargs):
        if before is not None:
            marks[before] = time.perf_counter() - STARTED
        try:
            return original(*args, **kwargs)
        finally:
            marks[after] = time.perf_counter() - STARTED

    setattr(module, name, timed)


if __name__ == "__main__":
    status = main(sys.argv[1], sys.argv[2:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # as the jaxbp program ends (jaxbp.cli.command)
