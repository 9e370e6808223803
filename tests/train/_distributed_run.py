"""A small fit shared by the multi-process tests and the processes they start.

``python tests/train/_distributed_run.py OUT [--address HOST:PORT
--num-processes N --process-id I] [--devices D] [--checkpoint-dir DIR]
[--resume] [--epochs E] [--sleep S] [--stop-after K]`` joins the job (when the address is
given), trains the digits MLP of :func:`config` and writes
``OUT/history-I.json`` (this process's history, a digest of its final
parameters, and whether it started a checkpoint writer); ``--sleep`` seconds after each epoch let a test kill a process
mid-run (``OUT/progress-I.txt`` names the last epoch done); with
``--stop-after K`` process 1 alone asks to stop after epoch K. ``OUT`` is the test's directory: the library writes nothing there.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path


def config(epochs: int):
    """(model, train, val, fit keyword arguments) of the run."""
    import jaxbp
    from jaxbp import data, optim

    dataset = data.load("digits", n=400, seed=0)
    model = jaxbp.mlp([64, 32, 10], "relu", dropout=0.1)  # dropout: a key per step
    kwargs = {
        "loss": "cross_entropy",
        "optimizer": optim.adam(3e-3),
        "batch_size": 32,
        "epochs": epochs,
        "l2": 1e-4,
        "seed": 5,
    }
    return model, dataset.train, dataset.val, kwargs


def progress(args, index, record) -> None:
    """After each epoch: ``OUT/progress-I.txt`` says which, then ``--sleep``."""
    Path(args.out, f"progress-{index}.txt").write_text(f"epoch {record['epoch']}")
    time.sleep(args.sleep)


def stop(args, index, asked) -> bool:
    """``should_stop()``: true on process 1 after epoch ``--stop-after``
    (fit asks once per epoch, after its resumed epochs)."""
    asked.append(True)
    return index == 1 and len(asked) == args.stop_after


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--address")
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--process-id", type=int)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--checkpoint-dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument(
        "--stop-after", type=int, help="process 1's should_stop() after this epoch"
    )
    args = parser.parse_args(argv)

    from jaxbp.train import distributed

    job = distributed.initialize(
        args.address, args.num_processes, args.process_id, timeout=30
    )
    import jax
    import numpy as np

    from jaxbp.train import fit, resume

    writers = []

    class RecordedSaver(resume.BackgroundSaver):
        def __init__(self, *a, **k):
            writers.append(True)
            super().__init__(*a, **k)

    resume.BackgroundSaver = RecordedSaver  # a probe: did this process write?
    model, train, val, kwargs = config(args.epochs)
    index = 0 if job is None else job.process_id
    asked = []  # one entry per should_stop() call: after every epoch
    try:
        result = fit(
            model,
            train,
            val,
            devices=args.devices,
            checkpoint_dir=args.checkpoint_dir,
            resume=args.resume,
            callback=functools.partial(progress, args, index),
            should_stop=functools.partial(stop, args, index, asked),
            **kwargs,
        )
    except distributed.JobFailed as error:
        print(f"job failed: {error}", file=sys.stderr, flush=True)
        import os

        os._exit(4)  # not jax's exit-time shutdown barrier, which waits for the dead
    leaves = jax.tree_util.tree_leaves(result.params)
    report = {
        "history": result.history,
        "params_sum": float(sum(np.abs(np.asarray(leaf)).sum() for leaf in leaves)),
        "fully_addressable": all(leaf.is_fully_addressable for leaf in leaves),
        "wrote_checkpoints": bool(writers),
    }
    Path(args.out, f"history-{index}.json").write_text(json.dumps(report))
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
