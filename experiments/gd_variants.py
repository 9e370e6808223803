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
and loaded, so the per-second comparison is reported, not asserted. The
comparisons at equal epochs, updates and seconds are ``_gd_comparisons.py``.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for benchmarks/

import _common
from _gd_comparisons import BATCH, LR, N_TRAIN, TARGET, VARIANTS, analyse

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
LABELS = {
    "full": "full batch (1280)",
    "stochastic": "stochastic (batch 1)",
    "minibatch": "mini-batch (32)",
}
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
    seeds, rates = _common.seed_grid(cfg["seeds"], lrs)
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
                hyperparams=rates,
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


COLOURS = {"full": "C0", "stochastic": "C3", "minibatch": "C2"}
SHORT = {"full": "full", "stochastic": "batch 1", "minibatch": "batch 32"}


def plot_panel(ax, key, cfg, axes_data, mean, tuned):
    """Every variant's curve at the common lr against ``key``; on the seconds
    panel also each variant's best lr for the time budget (dashed)."""
    j0 = list(cfg["lrs"]).index(LR)
    for v in VARIANTS:
        xs = axes_data[v][key]
        keep = xs > 0
        also = " (also best at the dotted time)" if tuned[v] == j0 else ""
        label = f"{LABELS[v]}, lr {LR}" + (also if key == "seconds" else "")
        ax.plot(xs[keep], mean[v][j0][keep], "-", color=COLOURS[v], label=label)
        if key == "seconds" and tuned[v] != j0:
            label = (
                f"{LABELS[v]}, lr {cfg['lrs'][tuned[v]]:g} (best at the dotted time)"
            )
            ax.plot(
                xs[keep], mean[v][tuned[v]][keep], "--", color=COLOURS[v], label=label
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


def panel_titles(headline) -> list:
    def ranking(key):
        return " < ".join(SHORT[v] for v in headline[key])

    ratio = headline["per_update_full_over_minibatch"]
    return [
        f"per epoch (at dotted line): {ranking('per_epoch_order')}",
        (
            f"per update (at dotted line): {ranking('per_update_order')}\n"
            f"(loss full / batch 32 = {ratio:.4f})"
        ),
        (
            f"per second, lr {LR}: {ranking('per_second_order_common_lr')}\n"
            f"best lr each: {ranking('per_second_order_tuned_lr')}"
        ),
    ]


def plot(args, cfg, axes_data, mean, tuned, headline):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 5.6), sharey=True)
    panels = {
        "epochs": "epochs (passes over the 1,280 examples)",
        "updates": "parameter updates",
        "seconds": "training time (s) = updates x measured s/update",
    }
    titles = panel_titles(headline)
    for i, (ax, (key, xlabel)) in enumerate(zip(axes, panels.items())):
        plot_panel(ax, key, cfg, axes_data, mean, tuned)
        ax.axvline(headline[f"common_{key}"], color="0.4", ls=":", lw=1.2)
        ax.set_xlabel(xlabel)
        ax.set_title(titles[i], fontsize=9)
    j0 = list(cfg["lrs"]).index(LR)
    top = float(np.nanmax([np.nanmax(mean[v][j0]) for v in VARIANTS]))
    axes[0].set_ylim(top=1.3 * top, bottom=None)
    axes[0].set_ylabel("training loss (whole set, mean of seeds)")
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


def setup_of(cfg) -> dict:
    return {
        "dataset": f"digits, stratified subset of {N_TRAIN} training images",
        "model": f"mlp({SIZES}, relu, he init)",
        "loss": LOSS,
        "optimizer": "jaxbp.optim.sgd(lr), no momentum",
        "common_lr": LR,
        "batch_sizes": BATCH,
        "backprop": "manual",
        "training": "jaxbp.train.sweep per variant over seeds x learning rates; "
        "seed s: fit(seed=s)'s initial parameters and batches",
        "time_axis": "updates x median seconds per update, from timing a "
        "training epoch alone (jitted, warmed up, interleaved repetitions)",
        "tuned_lr": "per variant, the lr of the grid with the lowest loss at "
        "common_seconds",
        "machine": MACHINE,
        **cfg,
    }


def tuned_cell(seconds, headline, v) -> str:
    value = seconds["loss_at_common_seconds_tuned_lr"][v]
    return f"{value:.4g} (lr {headline['tuned_lr'][v]:g})"


def print_summary(cfg, timing, comparisons, headline) -> None:
    ce, cu = headline["common_epochs"], headline["common_updates"]
    cs = headline["common_seconds"]
    seconds = comparisons["per_second"]
    rows = [
        [
            LABELS[v],
            timing[v]["update_seconds_median"] * 1e6,
            timing[v]["epoch_seconds_median"] * 1e3,
            comparisons["per_epoch"]["loss_at_epoch"][ce][v],
            comparisons["per_update"]["loss_at_update"][cu][v],
            seconds["loss_at_common_seconds"][v],
            tuned_cell(seconds, headline, v),
            seconds["seconds_to_target"]["tuned_lr"][v] or "-",
        ]
        for v in VARIANTS
    ]
    header = ["variant", "us/update", "ms/epoch", f"loss@{ce}ep", f"loss@{cu}upd"]
    header += [f"loss@{cs:.3g}s", f"loss@{cs:.3g}s best lr", f"s to {TARGET} (best lr)"]
    title = f"{NAME}: lr {LR} unless noted, {cfg['seeds']} seeds (mean), same init"
    _common.print_table(header, rows, title)


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    started = time.perf_counter()
    cfg = config(args.quick)
    ds, model = setup()
    curves, program_timing = trajectories(cfg, model, ds.train)
    timing = time_epochs(cfg, model, ds.train)
    axes, mean, tuned, comparisons, headline = analyse(cfg, curves, timing)
    j0 = list(cfg["lrs"]).index(LR)
    results = {
        "setup": setup_of(cfg),
        "headline": headline,
        "comparisons": comparisons,
        "timing": {"per_variant": timing, "trajectory_program": program_timing},
        "curves": {
            v: {
                **axes[v],
                "loss_mean_per_lr": mean[v],
                "loss_per_seed_common_lr": curves[v][:, j0],
            }
            for v in VARIANTS
        },
    }
    print_summary(cfg, timing, comparisons, headline)
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
