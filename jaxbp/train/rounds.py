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
"""

from __future__ import annotations

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
    for number in range(progress.epoch + 1, rounds + 1):
        if progress.stopped_early:
            break
        progress = one_round(run, progress, number)
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
        if distributed.is_collective_failure(error):
            raise distributed.job_failed(error) from None
        raise


def one_round(run: Run, progress, number: int):
    """Train and evaluate round ``number``; raise TrainingDiverged on
    non-finite numbers, JobFailed when a collective with another process of a
    multi-process job fails."""
    x, t, xv, tv = run.data
    try:
        outputs = run.program(
            progress.current, x, t, run.train_key, np.uint32(number), xv, tv
        )
        new, *numbers = outputs
        step_losses, train_loss, finite, evaluation = jax.device_get(numbers)
    except Exception as error:
        if distributed.in_job() and distributed.is_collective_failure(error):
            raise distributed.job_failed(error) from None
        raise
    if not (np.all(np.isfinite(step_losses)) and finite):
        # the last good round is on disk first
        saved = run.saver.flush() if run.saver is not None else None
        run.diverged(number, step_losses, progress.history, saved or run.restored)
    record = run.make_record(number, train_loss, evaluation)
    return hist.advance(progress, new, record, run.config["patience"], number)
