"""Training benchmark: manual vs autodiff train steps, checkpoint save cost.

``python benchmarks/train_benchmark.py [--quick] [--out DIR]`` prints one table
per comparison and writes ``DIR/train_benchmark.json``. All timings are in one
process, after warm-up calls (compilation), blocking on every result
(``block_until_ready``); contenders are timed interleaved
(:func:`benchmarks.timing.interleaved_times`: every repetition times each
once, in shuffled order) and we report medians, and ratios as the median of
the per-repetition ratios.

1. **Train step, manual vs autodiff**: one jitted ``jaxbp.train.make_step``
   (forward, backward, Adam update) with the hand-written backward pass vs
   ``jax.value_and_grad``, for a digits-sized and a larger MLP.
2. **Checkpoint save cost** (the reason ``jaxbp.checkpoint`` does not use
   orbax): one save of a small MLP's params + Adam state + key, with
   ``jaxbp.checkpoint.save`` vs orbax's ``CheckpointManager`` (if installed).

An epoch as ``lax.scan`` vs a Python loop, and N models under ``vmap`` vs N
sequential runs, are sections of ``python benchmarks/benchmark.py``, with
their profiles.
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jax
import numpy as np

import jaxbp
from benchmarks import report
from benchmarks.timing import interleaved_times, median
from jaxbp import backprop as bp
from jaxbp import checkpoint, optim
from jaxbp.train import TrainState, make_step

LOSS = "cross_entropy"


def _ratio(num, den) -> float:
    return median(np.asarray(num) / np.asarray(den))


def _ms(seconds) -> float:
    return median(np.asarray(seconds) * 1e3)


def _setup(model, x, y, optimizer):
    params, state = model.init_with_state(jax.random.key(0))
    x, t, _, state = bp.prepare(model, params, x, y, LOSS, state)
    return TrainState(params, state, optimizer.init(params)), x, t


def step_comparison(args, reps):
    """Manual vs autodiff train step (jitted), per architecture."""
    rng = np.random.default_rng(0)
    problems = [([64, 128, 10], 32)]
    if not args.quick:
        problems.append(([784, 512, 512, 10], 128))
    rows = []
    for sizes, batch in problems:
        model = jaxbp.mlp(sizes)
        tx = optim.adam(1e-3)
        x = rng.normal(size=(batch, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], batch).astype(np.int32)
        train_state, xb, tb = _setup(model, x, y, tx)
        key = jax.random.key(1)
        fns = {}
        for mode in ("manual", "autodiff"):
            step = jax.jit(make_step(model, loss=LOSS, optimizer=tx, backprop=mode))
            fns[mode] = functools.partial(step, train_state, xb, tb, key)
        times = interleaved_times(fns, reps=reps, min_seconds=args.min_seconds)
        rows.append(
            {
                "model": "-".join(map(str, sizes)),
                "batch": batch,
                "manual_ms": _ms(times["manual"]),
                "autodiff_ms": _ms(times["autodiff"]),
                "manual/autodiff": _ratio(times["manual"], times["autodiff"]),
            }
        )
    report.print_table(
        list(rows[0]),
        [list(r.values()) for r in rows],
        "1. train step (forward + backward + Adam), jitted",
    )
    return rows


def checkpoint_comparison(args, reps):
    """Seconds per save: jaxbp.checkpoint vs orbax (when installed)."""
    model = jaxbp.mlp([64, 128, 10])
    params = model.init(jax.random.key(0))
    tx = optim.adam(1e-3)
    tree = {"params": params, "opt_state": tx.init(params), "key": jax.random.key(1)}
    directory = Path(tempfile.mkdtemp(prefix="jaxbp-bench-ckpt-"))
    step = iter(range(1, 1_000_000))
    fns = {"jaxbp": lambda: checkpoint.save(directory / "jaxbp", next(step), tree, {})}
    try:
        import orbax.checkpoint as ocp
    except ImportError:
        ocp = None
    if ocp is not None:
        manager = ocp.CheckpointManager(
            directory / "orbax",
            options=ocp.CheckpointManagerOptions(
                max_to_keep=2, enable_async_checkpointing=False
            ),
        )
        orbax_step = iter(range(1, 1_000_000))

        def orbax_save():
            manager.save(next(orbax_step), args=ocp.args.StandardSave(tree))
            manager.wait_until_finished()

        fns["orbax"] = orbax_save
    times = interleaved_times(fns, reps=reps, min_seconds=args.min_seconds)
    row = {"jaxbp_ms": _ms(times["jaxbp"])}
    if ocp is not None:
        row["orbax_ms"] = _ms(times["orbax"])
        row["orbax/jaxbp"] = _ratio(times["orbax"], times["jaxbp"])
    report.print_table(
        list(row),
        [list(row.values())],
        "2. one checkpoint save (MLP 64-128-10 params + Adam state + key, fsync)",
    )
    return row


def main(argv=None) -> int:
    """Run both comparisons, print their tables, write the JSON file."""
    args = report.parse_args("train_benchmark", __doc__.splitlines()[0], argv)
    args.min_seconds = 0.02 if args.quick else 0.1
    reps = 5 if args.quick else 21
    started = time.perf_counter()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; reps={reps}")
    results = {
        "step": step_comparison(args, reps),
        "checkpoint": checkpoint_comparison(args, reps),
    }
    results["seconds"] = time.perf_counter() - started
    payload = {"benchmark": args.name, "quick": args.quick, **results}
    path = report.write_json(args.path, payload)
    print(f"wrote {path} in {results['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
