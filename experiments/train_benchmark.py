"""Training benchmark: manual vs autodiff steps, scan vs Python loop, vmap vs sequential.

``python experiments/train_benchmark.py [--quick] [--out DIR]`` prints one table
per comparison and writes ``DIR/train_benchmark.json``. All timings are in one
process, after warm-up calls (compilation), blocking on every result
(``block_until_ready``); contenders are timed interleaved (``jaxbp.bench.
interleaved_times``: every repetition times each once, in rotating order) and
we report medians, and ratios as the median of the per-repetition ratios.

1. **Train step, manual vs autodiff**: one jitted ``jaxbp.train.make_step``
   (forward, backward, Adam update) with the hand-written backward pass vs
   ``jax.value_and_grad``, for a digits-sized and a larger MLP.
2. **An epoch as one ``lax.scan`` vs a Python loop of jitted steps**: the
   same steps on the same pre-shuffled mini-batches of the digits training
   set; the loop dispatches one jitted step per batch (its batches are sliced
   in advance, so it pays only the dispatch).
3. **N models vmapped vs N sequential runs**: ``make_train_fn`` runs (whole
   training, several epochs) for N seeds, as one ``jax.vmap`` program vs one
   jitted run after another.
4. **Checkpoint save cost** (the reason ``jaxbp.checkpoint`` does not use
   orbax): one save of a small MLP's params + Adam state + key, with
   ``jaxbp.checkpoint.save`` vs orbax's ``CheckpointManager`` (if installed).
"""

from __future__ import annotations

import functools
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import backprop as bp
from jaxbp import checkpoint, data, optim
from jaxbp.bench import interleaved_times, quartiles
from jaxbp.train import (
    TrainState,
    make_epoch,
    make_step,
    make_train_fn,
    train_keys,
)

LOSS = "cross_entropy"


def _ratio(num, den) -> float:
    return quartiles(np.asarray(num) / np.asarray(den))[1]


def _ms(seconds) -> float:
    return quartiles(np.asarray(seconds) * 1e3)[1]


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
            step = jax.jit(make_step(model, LOSS, tx, backprop=mode))
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
    _common.print_table(
        list(rows[0]),
        [list(r.values()) for r in rows],
        "1. train step (forward + backward + Adam), jitted",
    )
    return rows


def epoch_comparison(args, reps):
    """One epoch: a compiled lax.scan vs a Python loop of jitted steps."""
    dataset = data.load("digits")
    model = jaxbp.mlp([64, 128, 10])
    tx = optim.adam(1e-3)
    batch = 32
    train_state, x, t = _setup(model, *dataset.train, tx)
    n = x.shape[0]
    step = make_step(model, LOSS, tx)
    _, train_key = train_keys(jax.random.key(0))

    compile_start = time.perf_counter()
    scan_epoch = jax.jit(make_epoch(step, n, batch))
    jax.block_until_ready(scan_epoch(train_state, x, t, train_key, 1))
    scan_compile = time.perf_counter() - compile_start

    # the loop: the same batches and keys as the scan's epoch 1, sliced ahead
    epoch_key = jax.random.fold_in(train_key, jnp.uint32(1))
    perm_key, steps_key = jax.random.split(epoch_key)
    num_steps = n // batch
    order = jax.random.permutation(perm_key, jnp.arange(n, dtype=jnp.int32))
    index = np.asarray(order[: num_steps * batch]).reshape(num_steps, batch)
    batches = [(x[i], t[i]) for i in index]
    keys = list(jax.random.split(steps_key, num_steps))
    jit_step = jax.jit(step)

    def loop_epoch():
        state = train_state
        for (xb, tb), key in zip(batches, keys):
            state, _ = jit_step(state, xb, tb, key)
        return state

    # both compute the same epoch
    scanned, _ = scan_epoch(train_state, x, t, train_key, 1)
    looped = loop_epoch()
    agree = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(scanned.params), jax.tree.leaves(looped.params))
    )
    times = interleaved_times(
        {
            "scan": lambda: scan_epoch(train_state, x, t, train_key, 1),
            "loop": loop_epoch,
        },
        reps=reps,
        min_seconds=args.min_seconds,
    )
    row = {
        "steps": num_steps,
        "batch": batch,
        "scan_ms": _ms(times["scan"]),
        "loop_ms": _ms(times["loop"]),
        "loop/scan": _ratio(times["loop"], times["scan"]),
        "scan_compile_s": scan_compile,
        "max_param_diff": agree,
    }
    _common.print_table(
        list(row),
        [list(row.values())],
        f"2. one epoch on digits ({n} examples, MLP 64-128-10, Adam)",
    )
    return row


def vmap_comparison(args, reps):
    """N training runs: one vmapped program vs N sequential jitted runs."""
    digits, blobs = data.load("digits"), data.load("blobs")
    problems = [
        ("blobs", blobs.train, jaxbp.mlp([2, 16, 3]), 16),
        ("digits", digits.train, jaxbp.mlp([64, 32, 10]), 64),
    ]
    epochs = 3 if args.quick else 10
    rows = []
    for name, train_split, model, batch in problems:
        for num_models in (4,) if args.quick else (4, 16):
            train = make_train_fn(
                model,
                *train_split,
                optimizer_fn=optim.adam,
                batch_size=batch,
                epochs=epochs,
            )
            keys = jnp.stack([jax.random.key(s) for s in range(num_models)])
            lr = jnp.float32(3e-3)
            vmapped = jax.jit(jax.vmap(train, in_axes=(0, None)))
            key_list = list(keys)

            def sequential(train=train, key_list=key_list, lr=lr):
                return [train(k, lr) for k in key_list]

            def batched(vmapped=vmapped, keys=keys, lr=lr):
                return vmapped(keys, lr)

            times = interleaved_times(
                {"vmap": batched, "sequential": sequential},
                reps=max(3, reps // 2),
                min_seconds=args.min_seconds,
                warmup=1,
            )
            rows.append(
                {
                    "data": name,
                    "model": "-".join(str(layer) for layer in _sizes(model)),
                    "batch": batch,
                    "models": num_models,
                    "epochs": epochs,
                    "vmap_ms": _ms(times["vmap"]),
                    "sequential_ms": _ms(times["sequential"]),
                    "sequential/vmap": _ratio(times["sequential"], times["vmap"]),
                }
            )
    _common.print_table(
        list(rows[0]),
        [list(r.values()) for r in rows],
        "3. N whole training runs (Adam): one vmapped program vs N jitted runs",
    )
    return rows


def _sizes(model):
    """Layer widths of an MLP: inputs, then each dense layer's outputs."""
    params = jax.eval_shape(model.init, jax.random.key(0))
    widths = [model.in_shape[0]]
    widths += [p["w"].shape[1] for p in params if isinstance(p, dict) and "w" in p]
    return widths


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
    _common.print_table(
        list(row),
        [list(row.values())],
        "4. one checkpoint save (MLP 64-128-10 params + Adam state + key, fsync)",
    )
    return row


def main(argv=None) -> int:
    args = _common.parse_args("train_benchmark", __doc__.splitlines()[0], argv=argv)
    args.min_seconds = 0.02 if args.quick else 0.1
    reps = 5 if args.quick else 21
    started = time.perf_counter()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; reps={reps}")
    results = {
        "step": step_comparison(args, reps),
        "epoch": epoch_comparison(args, reps),
        "vmap": vmap_comparison(args, reps),
        "checkpoint": checkpoint_comparison(args, reps),
    }
    results["seconds"] = time.perf_counter() - started
    path = _common.write_json(args, results)
    print(f"wrote {path} in {results['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
