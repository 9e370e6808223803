"""Training round by round: a compiled round, its record, checkpoint, callback and stop.

A *round* is what one call of a run's compiled program does: an epoch for
:func:`jaxbp.train.fit`, ``eval_interval`` optimizer steps for
:func:`jaxbp.train.fit_language_model`; each ends with an evaluation. Both
drive their rounds through :func:`train_rounds`::

    for r in rounds done + 1 ... rounds:
        train_state, step_losses, evaluation = program(train_state, data, key, r)
        non-finite?  -> the last good checkpoint is flushed, TrainingDiverged
        record       =  run.make_record(r, mean step loss, evaluation)
        progress     =  history.advance(...)       (best round, early stopping)
        checkpoint (when due), callback(record), should_stop()?

Short rounds run one ahead: while Python reads round r's numbers, records,
checkpoints and calls back, the device already runs round r + 1 (dispatched
with round r's train state, which it does not wait for). A round's results
do not depend on when it was dispatched, so the history is the same bit for
bit; a round run ahead that is not wanted (early stopping, divergence,
``should_stop()``) is dropped, which costs at most one short round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxbp.train import distributed
from jaxbp.train import history as hist
from jaxbp.train.parallel import local_copies, put_replicated
from jaxbp.train.resume import checkpoint_metadata, checkpoint_tree


class RoundData(NamedTuple):
    """What the program reads besides the train state: the training arrays
    ``x``, ``t`` and the validation ``xv``, ``tv`` (either may be None)."""

    x: Any
    t: Any
    xv: Any
    tv: Any


class Run(NamedTuple):
    """What every round of a run uses.

    ``program(train_state, x, t, train_key, round, xv, tv) -> (train_state,
    step_losses, mean step loss, finite, evaluation)``; ``make_record(round,
    train_loss, evaluation) -> dict``; ``diverged(round, step_losses, history,
    checkpoint)`` raises TrainingDiverged; ``saver`` the checkpoint saver (or
    None) and ``restored`` the checkpoint the run resumed from (or None).
    """

    program: Callable
    data: RoundData
    train_key: Any
    config: dict
    saver: Any
    restored: Path | None
    make_record: Callable
    diverged: Callable = hist.raise_diverged


def replicate(progress, train_key, data, replicated):
    """Train states, key and data put on every device of the mesh (in a
    multi-process job, each process puts its own copy on its own devices)."""
    tree = (progress.current, progress.best, train_key, data)
    if replicated.is_fully_addressable:
        current, best, train_key, data = jax.device_put(tree, replicated)
    else:
        current, best, train_key, data = put_replicated(tree, replicated)
    return progress._replace(current=current, best=best), train_key, data


def train_rounds(run: Run, progress, schedule, callback, should_stop):
    """Rounds ``progress.epoch + 1 ... rounds`` (or until early stopping or
    ``should_stop()``), each followed by its checkpoint (when due) and the
    callback; ``schedule = (rounds, checkpoint_every)``.

    In a multi-process job every process runs the same rounds: training stops
    after a round when ``should_stop()`` is true on any process, and the
    returned progress holds this process's copies of the arrays.
    """
    rounds, checkpoint_every = schedule
    ahead, last_seconds = None, None
    for number in range(progress.epoch + 1, rounds + 1):
        if progress.stopped_early:
            break
        started = time.perf_counter()
        if ahead is None:
            ahead = dispatch(run, progress.current, number)
        outputs, ahead = ahead, None
        if number < rounds and _runs_ahead(last_seconds):
            ahead = dispatch(run, outputs[0], number + 1)
        progress = finish_round(run, progress, number, outputs)
        last_seconds = time.perf_counter() - started
        stopping = should_stop is not None and bool(should_stop())
        if distributed.in_job():
            stopping = _agreed(stopping)
        due = number % checkpoint_every == 0 or number == rounds or stopping
        if run.saver is not None and (due or progress.stopped_early):
            run.saver.request(
                number,
                _local(checkpoint_tree(progress, run.train_key)),
                checkpoint_metadata(progress, run.config),
            )
        if callback is not None:
            callback(dict(progress.history[-1]))
        if stopping:
            break
    return _local(progress)


def _local(tree):
    """In a job, ``tree`` with this process's copies of its arrays (what the
    caller and the checkpoint writer get: nothing then runs on other
    processes' devices); ``tree`` itself otherwise."""
    return local_copies(tree) if distributed.in_job() else tree


def _agreed(flag: bool) -> bool:
    """Whether ``flag`` is true on any process (a collective: JobFailed when
    another process is gone)."""
    try:
        return distributed.any_process(flag)
    except Exception as error:
        _raise_if_job_failed(error)
        raise


#: Rounds are run one ahead while the last one took less than this many
#: seconds: there Python's work between rounds (reading the numbers, the
#: record, the callback) is a noticeable share of a round, and a round run
#: ahead and then dropped costs little.
AHEAD_BELOW_SECONDS = 0.25


def _runs_ahead(last_seconds: float | None) -> bool:
    """Whether to dispatch the next round before reading this one: after a
    short round (not after the first, which compiles), not in a job (whose
    processes agree on stopping through a collective after every round)."""
    if last_seconds is None or last_seconds >= AHEAD_BELOW_SECONDS:
        return False
    return not distributed.in_job()


def dispatch(run: Run, train_state, number: int):
    """Round ``number``'s program started from ``train_state``: its outputs,
    arrays the device is still computing."""
    x, t, xv, tv = run.data
    try:
        return run.program(train_state, x, t, run.train_key, np.uint32(number), xv, tv)
    except Exception as error:
        _raise_if_job_failed(error)
        raise


def finish_round(run: Run, progress, number: int, outputs):
    """Round ``number``'s outputs read and recorded: the new progress. Raises
    TrainingDiverged on non-finite numbers, JobFailed when a collective with
    another process of a multi-process job failed."""
    new, *numbers = outputs
    try:
        step_losses, train_loss, finite, evaluation = jax.device_get(numbers)
    except Exception as error:
        _raise_if_job_failed(error)
        raise
    if not (np.all(np.isfinite(step_losses)) and finite):
        # the last good round is on disk first
        saved = run.saver.flush() if run.saver is not None else None
        run.diverged(number, step_losses, progress.history, saved or run.restored)
    record = run.make_record(number, train_loss, evaluation)
    return hist.advance(progress, new, record, run.config["patience"], number)


def _raise_if_job_failed(error: BaseException) -> None:
    """Raise ``JobFailed`` when ``error`` is a failed collective in a job."""
    if distributed.in_job() and distributed.is_collective_failure(error):
        raise distributed.job_failed(error) from None
