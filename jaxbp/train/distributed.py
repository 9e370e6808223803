"""Joining a multi-process ``jax.distributed`` job, and what fit does differently in one.

A job is ``num_processes`` processes started alike (one per machine, or
several on one machine), each with the same data and arguments::

    process i:  initialize("HOST:PORT", num_processes=N, process_id=i)
                fit(..., devices=D)      # D devices over the whole job

After :func:`initialize`, ``jax.devices()`` lists every process's devices;
:func:`jaxbp.train.parallel.data_parallel` builds the mesh over them, every
process computes the same batch indices from the seed, and each device
gathers only its shard of every batch. The processes run the same compiled
programs in the same order; the gradient all-reduce crosses processes (on
CPU through gloo, over TCP). Only process 0 writes checkpoints.

The three settings come from the arguments or, for those not given, from the
environment: ``JAX_COORDINATOR_ADDRESS`` (which ``jax.distributed`` reads
itself), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``. None of them set (or
one process) is a single-process run: :func:`initialize` does nothing.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

import jax
import numpy as np

#: setting -> the environment variable it is read from when not given.
ENVIRONMENT = {
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}

#: ``HOST:PORT``; HOST a name, an IPv4 address or a bracketed IPv6 address.
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


class JobFailed(RuntimeError):
    """The multi-process job cannot go on: the coordinator could not be
    reached, or another process died (a collective failed)."""


class Job(NamedTuple):
    """A multi-process job's settings (``num_processes`` >= 2)."""

    coordinator_address: str
    num_processes: int
    process_id: int


def job_settings(
    coordinator_address=None,
    num_processes=None,
    process_id=None,
    *,
    environ=None,
    names=None,
) -> Job | None:
    """The :class:`Job` the arguments (or, for those None, the environment)
    describe; None for a single-process run (nothing set, or one process).

    ``names`` maps each setting to how a message names it (default: the
    argument's name; a value from the environment is named by its variable).

    Raises:
      ValueError: some settings given but not all three; a malformed
        ``HOST:PORT``; ``num_processes`` not an integer >= 1; ``process_id``
        not an integer in [0, num_processes).
    """
    environ = os.environ if environ is None else environ
    given = {
        "coordinator_address": coordinator_address,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    values, named = {}, {}
    for setting, value in given.items():
        named[setting] = (names or {}).get(setting, setting)
        if value is None and environ.get(ENVIRONMENT[setting], "") != "":
            value, named[setting] = environ[ENVIRONMENT[setting]], ENVIRONMENT[setting]
        values[setting] = value
    if all(v is None for v in values.values()):
        return None
    return _checked(values, named)


def _checked(values: dict, named: dict) -> Job | None:
    missing = [named[k] for k, v in values.items() if v is None]
    present = [named[k] for k, v in values.items() if v is not None]
    if missing:
        raise ValueError(
            f"{' and '.join(present)} given without {' and '.join(missing)}: a "
            "multi-process job needs the coordinator address, the number of "
            "processes and this process's id"
        )
    address = str(values["coordinator_address"])
    match = _ADDRESS.match(address)
    if match is None or not 1 <= int(match.group(2)) <= 65535:
        raise ValueError(
            f"{named['coordinator_address']} must be HOST:PORT with a port in "
            f"1..65535 (e.g. 10.0.0.1:1234 or localhost:1234); got {address!r}"
        )
    count = _integer(values["num_processes"], named["num_processes"], 1)
    index = _integer(values["process_id"], named["process_id"], 0)
    if index >= count:
        raise ValueError(
            f"{named['process_id']} must be in [0, {count}) for a job of "
            f"{count} processes; got {index}"
        )
    return None if count == 1 else Job(address, count, index)


def _integer(value, name: str, low: int) -> int:
    """``value`` (an int, or its decimal text from the environment) as an int >= low."""
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(  # noqa: TRY004 (bad arguments are ValueErrors here)
            f"{name} must be an integer >= {low}; got {value!r}"
        )
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}; got {value}")
    return int(value)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: int = 60,
    heartbeat_timeout: int = 10,
) -> Job | None:
    """Join the job the arguments (or the environment) describe; the :class:`Job`,
    or None (doing nothing) for a single-process run.

    Call it before anything starts JAX's backend (before the first array or
    ``jax.devices()``). Process ``process_id`` 0 also runs the coordination
    service at ``coordinator_address`` (it binds every interface on that
    port); every process connects to it and waits, up to ``timeout`` seconds,
    for all ``num_processes`` to arrive. CPU collectives are gloo's (TCP).
    A process that stops sending heartbeats for ``heartbeat_timeout`` seconds
    is taken as dead, and the coordination service then ends the others (a
    collective with a dead peer fails as soon as its connection closes).
    Calling it again with the same settings returns the job.

    Raises:
      ValueError: as :func:`job_settings`; or a timeout below 1.
      JobFailed: the job could not be joined within ``timeout`` seconds.
    """
    job = job_settings(coordinator_address, num_processes, process_id)
    for name, value in (("timeout", timeout), ("heartbeat_timeout", heartbeat_timeout)):
        _integer(value, name, 1)
    if job is None:
        return None
    if jax.distributed.is_initialized():
        return _joined_already(job)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            job.coordinator_address,
            job.num_processes,
            job.process_id,
            initialization_timeout=int(timeout),
            heartbeat_timeout_seconds=int(heartbeat_timeout),
            cluster_detection_method="deactivate",
        )
    except jax.errors.JaxRuntimeError as error:
        raise JobFailed(
            f"process {job.process_id} of {job.num_processes} could not join the "
            f"job at {job.coordinator_address} within {timeout}s "
            f"({_first_line(error)})"
        ) from None
    return job


def _joined_already(job: Job) -> Job:
    if (jax.process_count(), jax.process_index()) != job[1:]:
        raise RuntimeError(
            f"already in a job as process {jax.process_index()} of "
            f"{jax.process_count()}; cannot join as {job.process_id} of "
            f"{job.num_processes}"
        )
    return job


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def is_main_process() -> bool:
    """Whether this process writes (process 0; always true without a job)."""
    return jax.process_index() == 0


def in_job() -> bool:
    """Whether this process is one of several in a ``jax.distributed`` job."""
    return jax.process_count() > 1


def any_process(flag) -> bool:
    """Whether ``flag`` is true on any process of the job (every process must
    call it at the same point); ``bool(flag)`` without a job."""
    if not in_job():
        return bool(flag)
    from jax.experimental import multihost_utils

    flags = multihost_utils.process_allgather(np.int32(bool(flag)))
    return bool(np.any(flags))


def is_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a runtime error from XLA (a failed collective, a
    lost coordination service) rather than a mistake in the program."""
    if isinstance(error, jax.errors.JaxRuntimeError):
        return True
    text = str(error)
    return isinstance(error, ValueError) and (
        "Gloo" in text or bool(re.match(r"^[A-Z_]+: ", text))
    )


def job_failed(error: BaseException) -> JobFailed:
    """The :class:`JobFailed` for a collective that failed in a job."""
    return JobFailed(
        f"process {jax.process_index()} of {jax.process_count()}: a collective "
        f"with the other processes failed, most likely because another process "
        f"died ({_first_line(error)})"
    )
