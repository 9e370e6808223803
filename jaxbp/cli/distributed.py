"""``jaxbp train`` as one of several processes of a ``jax.distributed`` job.

::

    jaxbp train ... --coordinator-address HOST:PORT --num-processes N --process-id I

(or ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` in
the environment, for flags not given). Every process is started with the same
flags and data; they join one job (``jaxbp.train.distributed``) and train one
model with the batch split over every process's devices. ``--devices`` counts
the devices of the whole job (default: one per process). Process 0 alone
writes ``metrics.json``, ``curves.png``, ``flags.json`` and the checkpoints,
and prints the progress bar and the summary; the others print nothing on
stdout. An error in any process ends that process with its one line (prefixed
``process I of N``) and its exit status at once, without JAX's exit-time
shutdown barrier, so the others' next collective fails and they end too, with
exit status 4 and a line saying another process failed. (When process 0, the
coordinator, dies, JAX's coordination client ends the others itself: exit
status 134, with JAX's log line "... another task died".)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import traceback

from jaxbp.cli.errors import Diverged, UsageError, one_line
from jaxbp.cli.parsing import number

#: The exit status of a process whose job failed (no coordinator, a dead peer).
JOB_FAILED = 4

#: Seconds JAX's own join deadline is given beyond --join-timeout.
JAX_JOIN_MARGIN = 30

#: setting -> its flag.
FLAGS = {
    "coordinator_address": "--coordinator-address",
    "num_processes": "--num-processes",
    "process_id": "--process-id",
}


def add_flags(p: argparse.ArgumentParser) -> None:
    """The flags that make ``jaxbp train`` one process of a job."""
    p.add_argument(
        "--coordinator-address",
        default=None,
        metavar="HOST:PORT",
        help="multi-process training: process 0's address and a free port "
        "(default $JAX_COORDINATOR_ADDRESS)",
    )
    p.add_argument(
        "--num-processes",
        type=number(int, 1, strict=False),
        default=None,
        help="multi-process training: processes in the job (default $JAX_NUM_PROCESSES)",
    )
    p.add_argument(
        "--process-id",
        type=number(int, 0, strict=False),
        default=None,
        help="multi-process training: this process, 0 .. N-1 (default "
        "$JAX_PROCESS_ID); process 0 writes the files",
    )
    p.add_argument(
        "--join-timeout",
        type=number(int, 1, strict=False),
        default=60,
        help="multi-process training: seconds to wait for every process to join "
        "(default 60)",
    )


def job_from_flags(args, environ=None):
    """The ``jaxbp.train.distributed.Job`` the flags (or the environment) ask
    for, or None; a UsageError naming the flag (or variable) as typed."""
    from jaxbp.train import distributed

    try:
        return distributed.job_settings(
            args.coordinator_address,
            args.num_processes,
            args.process_id,
            environ=environ,
            names=FLAGS,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def writes_files() -> bool:
    """Whether this process writes the run's files and shows its progress:
    process 0 of a job, or the only process."""
    import jax

    return jax.process_index() == 0


def check_job_devices(devices: int, job, local_devices: int) -> None:
    """UsageError unless ``--devices`` takes the same number from each process."""
    processes = job.num_processes
    if devices % processes or devices // processes > local_devices:
        raise UsageError(
            f"--devices {devices}: a job of {processes} processes trains on the "
            f"same number of devices from each, so --devices must be a multiple "
            f"of {processes} and at most {processes * local_devices} (this "
            f"process has {local_devices})"
        )


def run_in_job(args, body) -> int:
    """``body(args)`` in the job the flags describe (or alone, without one).

    Without a job it is just ``body(args)`` (``--devices`` default 1). In a
    job, the process joins it, checks ``--devices`` (default: one device per
    process), runs ``body`` (stdout silenced but on process 0), and ends at
    once on any error: see the module docstring.
    """
    job = job_from_flags(args)
    if job is None:
        args.devices = 1 if args.devices is None else args.devices
        return body(args)
    from jaxbp.train import distributed

    where = f"process {job.process_id} of {job.num_processes}"
    _join(args, job, where)
    with _ending_on_error(args, where):
        import jax

        args.devices = job.num_processes if args.devices is None else args.devices
        check_job_devices(args.devices, job, jax.local_device_count())
        with _stdout_of(distributed.is_main_process()):
            return body(args)


def _join(args, job, where: str) -> None:
    """Join the job, or end with one line once ``--join-timeout`` has passed.

    (JAX's own deadline, later, would end the process with a C++ stack trace;
    a watchdog thread gets there first, while the main thread waits in JAX.)
    """
    from jaxbp.train import distributed

    seconds = args.join_timeout
    message = (
        f"{where} could not join the job at {job.coordinator_address} within "
        f"{seconds}s (--join-timeout): is process 0 running there, and are all "
        f"{job.num_processes} processes started?"
    )
    watchdog = threading.Timer(seconds, _end, (args, message, JOB_FAILED))
    watchdog.daemon = True
    watchdog.start()
    try:
        distributed.initialize(*job, timeout=seconds + JAX_JOIN_MARGIN)
    except distributed.JobFailed as error:
        _end(args, str(error), JOB_FAILED)
    finally:
        watchdog.cancel()


@contextlib.contextmanager
def _ending_on_error(args, where: str):
    """Any error ends this process at once with its line and status."""
    from jaxbp.train.distributed import JobFailed

    try:
        yield
    except (UsageError, Diverged) as error:
        _end(args, f"{where}: {error}", error.status)
    except JobFailed as error:
        _end(args, str(error), JOB_FAILED)
    except KeyboardInterrupt:
        _end(args, f"{where}: interrupted", 130, prefix="")
    except BaseException:  # noqa: BLE001 (a bug: its traceback, then out without the barrier)
        traceback.print_exc()
        _end(args, f"{where}: ended by the error above", 1)


def _end(args, message: str, status: int, prefix: str = "error: ") -> None:
    """Print ``jaxbp COMMAND: error: MESSAGE`` and leave now, skipping JAX's
    exit-time shutdown barrier (which would wait for the processes still
    running): their next collective fails as this process's connections close."""
    print(f"jaxbp {args.command}: {prefix}{one_line(message)}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@contextlib.contextmanager
def _stdout_of(main: bool):
    """stdout as it is on the main process, silenced on the others (file
    descriptor 1 itself: gloo prints there too)."""
    if main:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
