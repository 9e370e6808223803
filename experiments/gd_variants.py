"""Gradient descent variants: full batch vs stochastic (batch 1) vs mini-batch (32).

``python experiments/gd_variants.py [--quick] [--out DIR]``

The same MLP (64-64-10, ReLU, He init), the same initial parameters (one set
per seed) and plain SGD with the same learning rate train on 1,280 digits
training images (cross-entropy, manual backprop) with three batch sizes:

- **full batch** (gradient descent): one update per epoch, on all 1,280;
- **stochastic** (batch 1): 1,280 updates per epoch, one example each;
- **mini-batch** (batch 32): 40 updates per epoch.

Every example is seen once per epoch (a fresh shuffle every epoch). The loss
on the whole training set is measured every few updates (outside the timed
code) and plotted against epochs, against parameter updates and against
wall-clock training time. Each variant is one ``jaxbp.train.sweep`` over seeds
and learning rates (seed ``s``: ``fit(seed=s)``'s initial parameters and
batches), evaluated on the training set every few updates.

**Timing.** The time axis is (updates done) x (seconds per update), where the
seconds per update of each variant come from timing one training epoch alone
(``jaxbp.train.make_epoch``: ``run_steps`` over the epoch's batches, no loss
evaluation), jitted, after a warm-up call (compile time reported separately),
single seed, blocking on the result; the three variants are timed interleaved
(``benchmarks.timing.interleaved_times``) and we take medians. The machine is shared
and loaded, so the per-second comparison is reported, not asserted.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for benchmarks/

import _common

import jaxbp
from benchmarks.timing import interleaved_times, quartiles
from jaxbp import backprop as bp
from jaxbp import data, optim
from jaxbp.train import (
    TrainState,
    init_params,
    make_epoch,
    make_step,
    sweep,
    train_keys,
)

NAME = "gd_variants"
LOSS = "cross_entropy"
SIZES = [64, 64, 10]
N_TRAIN = 1280
LR = 0.02  # the common learning rate of the per-epoch / per-update comparison
TARGET = 0.1  # training loss for "time to target"
VARIANTS = ("full", "stochastic", "minibatch")
LABELS = {
    "full": "full batch (1280)",
    "stochastic": "stochastic (batch 1)",
    "minibatch": "mini-batch (32)",
}
BATCH = {"full": N_TRAIN, "stochastic": 1, "minibatch": 32}
MACHINE = "2 CPU cores shared with other jobs (loaded): seconds are indicative"


def config(quick: bool) -> dict:
    """Epochs per variant and how often (in updates) the training loss is measured.
    The full-batch run's update count is a multiple of the others' evaluation
    intervals, so all three are measured at exactly that many updates."""
    if quick:
        return {
            "lrs": [LR, 0.1],
            "seeds": 2,
            "epochs": {"full": 64, "stochastic": 2, "minibatch": 8},
            "eval_every": {"full": 1, "stochastic": 64, "minibatch": 4},
            "timing_reps": 5,
            "timing_min_seconds": 0.01,
        }
    return {
        "lrs": [0.01, LR, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0],
        "seeds": 4,
        "epochs": {"full": 512, "stochastic": 16, "minibatch": 64},
        "eval_every": {"full": 1, "stochastic": 64, "minibatch": 4},
        "timing_reps": 21,
        "timing_min_seconds": 0.05,
    }


def setup():
    ds = data.load("digits", n=N_TRAIN)
    model = jaxbp.mlp(SIZES, activation="relu")
    return ds, model


def trajectories(cfg, model, train):
    """Whole-training-set loss every ``eval_every`` updates, for every variant,
    seed and learning rate: one ``jaxbp.train.sweep`` per variant over seeds x
    learning rates (seed-major runs; seed ``s`` starts from ``fit(seed=s)``'s
    parameters and trains on its batches). The validation set is the training
    set: the sweep's evaluations are the whole-set loss in evaluation mode."""
    lrs = np.asarray(cfg["lrs"], np.float32)
    seeds = [s for s in range(cfg["seeds"]) for _ in lrs]
    params, state = init_params(model, seeds)
    curves, seconds = {}, {}
    for v in VARIANTS:
        with _common.Timer() as timer:
            runs = sweep(
                model,
                train,
                train,
                loss=LOSS,
                optimizer=optim.sgd,
                hyperparams=jnp.tile(jnp.asarray(lrs), cfg["seeds"]),
                params=params,
                state=state,
                seeds=seeds,
                batch_size=BATCH[v],
                epochs=cfg["epochs"][v],
                eval_every=cfg["eval_every"][v],
            )
            runs = jax.device_get(runs)
        seconds[v] = timer.seconds
        points = np.concatenate(
            [np.asarray(runs.initial.val_loss)[:, None], runs.val_loss], axis=1
        )
        curves[v] = points.reshape(cfg["seeds"], len(lrs), -1)
    return curves, {"sweep_seconds": seconds, "machine": MACHINE}


def time_epochs(cfg, model, train):
    """Seconds per training epoch of each variant: ``jaxbp.train.make_epoch``
    (``run_steps`` over the epoch's batches, no loss evaluation) jitted,
    warmed up, single seed, the variants timed interleaved."""
    tx = optim.sgd(LR)
    step = make_step(model, loss=LOSS, optimizer=tx, backprop="manual")
    params, state = init_params(model, [0])
    p0 = jax.tree.map(lambda leaf: leaf[0], params)
    start = TrainState(p0, state, tx.init(p0))
    x, t, _, _ = bp.prepare(model, None, *train, LOSS, state)
    train_key = train_keys(jax.random.key(1000))[1]
    epoch = np.uint32(1)
    fns, compile_seconds = {}, {}
    for v in VARIANTS:
        fn = jax.jit(make_epoch(step, N_TRAIN, BATCH[v]))
        with _common.Timer() as timer:
            compiled = fn.lower(start, x, t, train_key, epoch).compile()
        compile_seconds[v] = timer.seconds
        fns[v] = functools.partial(compiled, start, x, t, train_key, epoch)
    seconds = interleaved_times(
        fns, reps=cfg["timing_reps"], min_seconds=cfg["timing_min_seconds"]
    )
    return {v: epoch_timing(v, seconds, compile_seconds[v]) for v in VARIANTS}


def epoch_timing(v, seconds, compile_seconds) -> dict:
    """Quartiles of variant ``v``'s epoch times and what follows from them."""
    q1, med, q3 = quartiles(seconds[v])
    return {
        "epoch_seconds_median": med,
        "epoch_seconds_q1": q1,
        "epoch_seconds_q3": q3,
        "update_seconds_median": med / (N_TRAIN // BATCH[v]),
        "examples_per_second": N_TRAIN / med,
        "compile_seconds": compile_seconds,
        "samples": seconds[v],
        # Median of the per-repetition ratios (interleaved: same load).
        "epoch_time_over_minibatch": quartiles(seconds[v] / seconds["minibatch"])[1],
    }


def loss_at(updates, losses, when):
    """The measured loss after exactly ``when`` updates (a measured point)."""
    return float(losses[int(np.flatnonzero(updates == when)[0])])


def loss_at_time(times, losses, when):
    """The last measured loss at or before time ``when``."""
    return float(losses[int(np.flatnonzero(times <= when * (1 + 1e-9))[-1])])


def first_time_below(times, losses, target):
    hit = np.flatnonzero(losses <= target)
    return float(times[hit[0]]) if hit.size else None


def order(values: dict) -> list:
    """Variant names, lowest loss first (NaN/inf last)."""
    return sorted(values, key=lambda v: values[v] if np.isfinite(values[v]) else np.inf)


def analyse(cfg, curves, timing):
    """Per-epoch, per-update and per-second comparisons of the seed-mean curves."""
    lrs = list(cfg["lrs"])
    j0 = lrs.index(LR)
    axes = {}
    for v in VARIANTS:
        updates = np.arange(curves[v].shape[-1]) * cfg["eval_every"][v]
        axes[v] = {
            "updates": updates,
            "epochs": updates / (N_TRAIN // BATCH[v]),
            "seconds": updates * timing[v]["update_seconds_median"],
        }
    with np.errstate(invalid="ignore"):
        mean = {v: curves[v].mean(axis=0) for v in VARIANTS}  # (lrs, points)
    common_epochs = min(cfg["epochs"].values())
    common_updates = min(cfg["epochs"][v] * (N_TRAIN // BATCH[v]) for v in VARIANTS)
    common_seconds = min(float(axes[v]["seconds"][-1]) for v in VARIANTS)
    epoch_points = sorted({1, common_epochs})
    update_points = sorted(
        u
        for u in {common_updates // 4, common_updates}
        if all(u in axes[v]["updates"] for v in VARIANTS)
    )

    def at_epochs(j):
        return {
            e: {
                v: loss_at(axes[v]["updates"], mean[v][j], e * (N_TRAIN // BATCH[v]))
                for v in VARIANTS
            }
            for e in epoch_points
        }

    def at_updates(j):
        return {
            u: {v: loss_at(axes[v]["updates"], mean[v][j], u) for v in VARIANTS}
            for u in update_points
        }

    def at_seconds(j_of):
        return {
            v: loss_at_time(axes[v]["seconds"], mean[v][j_of[v]], common_seconds)
            for v in VARIANTS
        }

    # Each variant's best learning rate for the time budget: lowest loss at
    # common_seconds (what one would pick to train fastest by the clock).
    tuned = {}
    for v in VARIANTS:
        scores = [
            loss_at_time(axes[v]["seconds"], mean[v][j], common_seconds)
            for j in range(len(lrs))
        ]
        tuned[v] = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))
    common = dict.fromkeys(VARIANTS, j0)
    epoch_losses, update_losses = at_epochs(j0), at_updates(j0)
    second_losses, tuned_losses = at_seconds(common), at_seconds(tuned)
    to_target = {
        name: {
            v: first_time_below(axes[v]["seconds"], mean[v][choice[v]], TARGET)
            for v in VARIANTS
        }
        for name, choice in (("common_lr", common), ("tuned_lr", tuned))
    }
    cu = common_updates
    comparisons = {
        "common_lr": LR,
        "per_epoch": {
            "loss_at_epoch": epoch_losses,
            "order_best_first": {e: order(d) for e, d in epoch_losses.items()},
            "order_at_every_lr": {
                float(lr): order(at_epochs(j)[common_epochs])
                for j, lr in enumerate(lrs)
            },
        },
        "per_update": {
            "loss_at_update": update_losses,
            "order_best_first": {u: order(d) for u, d in update_losses.items()},
            "full_over_minibatch": {
                u: d["full"] / d["minibatch"] for u, d in update_losses.items()
            },
            "order_at_every_lr": {
                float(lr): order(at_updates(j)[cu]) for j, lr in enumerate(lrs)
            },
        },
        "per_second": {
            "common_seconds": common_seconds,
            "loss_at_common_seconds": second_losses,
            "order_best_first": order(second_losses),
            "tuned_lr": {v: lrs[tuned[v]] for v in VARIANTS},
            "loss_at_common_seconds_tuned_lr": tuned_losses,
            "order_best_first_tuned_lr": order(tuned_losses),
            "target_loss": TARGET,
            "seconds_to_target": to_target,
        },
    }
    headline = {
        "common_lr": LR,
        "common_epochs": common_epochs,
        "common_updates": common_updates,
        "common_seconds": common_seconds,
        "per_epoch_order": order(epoch_losses[common_epochs]),
        "per_epoch_order_epoch1": order(epoch_losses[1]),
        "per_update_order": order(update_losses[cu]),
        "per_update_full_over_minibatch": update_losses[cu]["full"]
        / update_losses[cu]["minibatch"],
        "per_update_stochastic_over_full": update_losses[cu]["stochastic"]
        / update_losses[cu]["full"],
        "per_second_order_common_lr": order(second_losses),
        "per_second_order_tuned_lr": order(tuned_losses),
        "tuned_lr": {v: lrs[tuned[v]] for v in VARIANTS},
    }
    return axes, mean, tuned, comparisons, headline


def plot(args, cfg, axes_data, mean, tuned, headline):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 5.6), sharey=True)
    colours = {"full": "C0", "stochastic": "C3", "minibatch": "C2"}
    j0 = list(cfg["lrs"]).index(LR)
    panels = [
        (
            "epochs",
            "epochs (passes over the 1,280 examples)",
            headline["common_epochs"],
        ),
        ("updates", "parameter updates", headline["common_updates"]),
        (
            "seconds",
            "training time (s) = updates x measured s/update",
            headline["common_seconds"],
        ),
    ]
    for ax, (key, xlabel, common) in zip(axes, panels):
        for v in VARIANTS:
            xs = axes_data[v][key]
            keep = xs > 0
            also = " (also best at the dotted time)" if tuned[v] == j0 else ""
            label = f"{LABELS[v]}, lr {LR}" + (also if key == "seconds" else "")
            ax.plot(xs[keep], mean[v][j0][keep], "-", color=colours[v], label=label)
            if key == "seconds" and tuned[v] != j0:
                lr = cfg["lrs"][tuned[v]]
                ax.plot(
                    xs[keep],
                    mean[v][tuned[v]][keep],
                    "--",
                    color=colours[v],
                    label=f"{LABELS[v]}, lr {lr:g} (best at the dotted time)",
                )
        ax.axvline(common, color="0.4", ls=":", lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    top = float(np.nanmax([np.nanmax(mean[v][j0]) for v in VARIANTS]))
    axes[0].set_ylim(top=1.3 * top, bottom=None)
    axes[0].set_ylabel("training loss (whole set, mean of seeds)")
    names = {"full": "full", "stochastic": "batch 1", "minibatch": "batch 32"}

    def ranking(key):
        return " < ".join(names[v] for v in headline[key])

    axes[0].set_title(
        f"per epoch (at dotted line): {ranking('per_epoch_order')}", fontsize=9
    )
    axes[1].set_title(
        f"per update (at dotted line): {ranking('per_update_order')}\n"
        f"(loss full / batch 32 = {headline['per_update_full_over_minibatch']:.4f})",
        fontsize=9,
    )
    axes[2].set_title(
        f"per second, lr {LR}: {ranking('per_second_order_common_lr')}\n"
        f"best lr each: {ranking('per_second_order_tuned_lr')}",
        fontsize=9,
    )
    axes[0].legend(fontsize=7.5, loc="lower left")
    axes[2].legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.suptitle(
        "Gradient descent variants: MLP 64-64-10 on 1,280 digits, plain SGD, same "
        f"initial parameters, {cfg['seeds']} seeds (loss: lowest first)",
        fontsize=11,
    )
    fig.tight_layout()
    path = _common.figure_path(args)
    _common.save_figure(fig, path)
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    started = time.perf_counter()
    cfg = config(args.quick)
    ds, model = setup()
    curves, program_timing = trajectories(cfg, model, ds.train)
    timing = time_epochs(cfg, model, ds.train)
    axes, mean, tuned, comparisons, headline = analyse(cfg, curves, timing)
    results = {
        "setup": {
            "dataset": f"digits, stratified subset of {N_TRAIN} training images",
            "model": f"mlp({SIZES}, relu, he init)",
            "loss": LOSS,
            "optimizer": "jaxbp.optim.sgd(lr), no momentum",
            "common_lr": LR,
            "batch_sizes": BATCH,
            "backprop": "manual",
            "time_axis": "updates x median seconds per update, from timing a "
            "training epoch alone (jitted, warmed up, interleaved repetitions)",
            "tuned_lr": "per variant, the lr of the grid with the lowest loss at "
            "common_seconds",
            "machine": "2 CPU cores, shared with other jobs (loaded)",
            **cfg,
        },
        "headline": headline,
        "comparisons": comparisons,
        "timing": {"per_variant": timing, "trajectory_program": program_timing},
        "curves": {
            v: {
                **axes[v],
                "loss_mean_per_lr": mean[v],
                "loss_per_seed_common_lr": curves[v][:, list(cfg["lrs"]).index(LR)],
            }
            for v in VARIANTS
        },
    }
    ce, cu = headline["common_epochs"], headline["common_updates"]
    cs = headline["common_seconds"]
    targets = comparisons["per_second"]["seconds_to_target"]

    def tuned_cell(v):
        value = comparisons["per_second"]["loss_at_common_seconds_tuned_lr"][v]
        return f"{value:.4g} (lr {headline['tuned_lr'][v]:g})"

    rows = [
        [
            LABELS[v],
            timing[v]["update_seconds_median"] * 1e6,
            timing[v]["epoch_seconds_median"] * 1e3,
            comparisons["per_epoch"]["loss_at_epoch"][ce][v],
            comparisons["per_update"]["loss_at_update"][cu][v],
            comparisons["per_second"]["loss_at_common_seconds"][v],
            tuned_cell(v),
            targets["tuned_lr"][v] or "-",
        ]
        for v in VARIANTS
    ]
    _common.print_table(
        [
            "variant",
            "us/update",
            "ms/epoch",
            f"loss@{ce}ep",
            f"loss@{cu}upd",
            f"loss@{cs:.3g}s",
            f"loss@{cs:.3g}s best lr",
            f"s to {TARGET} (best lr)",
        ],
        rows,
        f"{NAME}: lr {LR} unless noted, {cfg['seeds']} seeds (mean), same init",
    )
    plot(args, cfg, axes, mean, tuned, headline)
    results["seconds"] = time.perf_counter() - started
    _common.write_json(args, results)
    print(
        f"per epoch: {headline['per_epoch_order']}; per update: "
        f"{headline['per_update_order']} (full/minibatch "
        f"{headline['per_update_full_over_minibatch']:.4f}); per second: "
        f"{headline['per_second_order_common_lr']} (lr {LR}), "
        f"{headline['per_second_order_tuned_lr']} (best lr each); "
        f"{results['seconds']:.1f} s"
    )
    return results


if __name__ == "__main__":
    main()
