"""Learning rate: too small barely moves, too large diverges, in between it learns.

``python experiments/learning_rate.py [--quick] [--out DIR]``

One ``jaxbp.train.sweep`` (one compiled, vmapped program) trains an MLP
(64-64-10, ReLU, He init) on the digits with plain SGD (mini-batches of 32,
manual backprop) for every learning rate of a log grid from 1e-5 to 10 and
several seeds at once (``optimizer=optim.sgd``, the learning rates as
``hyperparams``). Seed ``s`` starts from ``fit(seed=s)``'s initial parameters
and trains on its batches. For every run we measure
the loss on the whole training set at initialization and after training
(evaluation mode), and the per-epoch training loss (mean over the epoch's
mini-batches, before each update).

A run *diverged* when its final loss is NaN/inf or above its initial loss; a
run *barely moved* when its final loss is above 0.9 x its initial loss.
Headline: the largest learning rate diverges, the smallest barely moves, and
the best is far lower than both.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import data, optim
from jaxbp.train import init_params, sweep

NAME = "learning_rate"
LOSS = "cross_entropy"
SIZES = [64, 64, 10]
BATCH = 32
BARELY_MOVED = 0.9  # final / initial above this: "barely moves"
MACHINE = "2 CPU cores shared with other jobs (loaded): seconds are indicative"


def config(quick: bool) -> dict:
    if quick:
        return {
            "lr_min": 1e-5,
            "lr_max": 10.0,
            "per_decade": 2,
            "seeds": 2,
            "epochs": 5,
        }
    return {"lr_min": 1e-5, "lr_max": 10.0, "per_decade": 4, "seeds": 5, "epochs": 30}


def learning_rates(cfg: dict) -> np.ndarray:
    """The log grid from ``lr_min`` to ``lr_max``, ``per_decade`` points a decade."""
    decades = np.log10(cfg["lr_max"]) - np.log10(cfg["lr_min"])
    num = round(float(decades * cfg["per_decade"])) + 1
    lrs = np.logspace(np.log10(cfg["lr_min"]), np.log10(cfg["lr_max"]), num)
    return lrs.astype(np.float32)


def run_grid(cfg: dict):
    """Train every (seed, learning rate) pair in one ``jaxbp.train.sweep``.

    The runs are seed-major (run ``i`` is seed ``i // L``, learning rate
    ``i % L``); seed ``s`` starts from ``fit(seed=s)``'s parameters and trains
    on its batches. The validation set is the training set itself, so the
    sweep's evaluations are the whole-training-set loss in evaluation mode,
    at initialization (``initial``) and after every epoch.
    """
    ds = data.load("digits")
    model = jaxbp.mlp(SIZES, activation="relu")
    lrs = learning_rates(cfg)
    seeds, rates = _common.seed_grid(cfg["seeds"], lrs)
    params, state = init_params(model, seeds)
    with _common.Timer() as timer:
        runs = sweep(
            model,
            ds.train,
            ds.train,
            loss=LOSS,
            optimizer=optim.sgd,
            hyperparams=rates,
            params=params,
            state=state,
            seeds=seeds,
            batch_size=BATCH,
            epochs=cfg["epochs"],
        )
        runs = jax.device_get(runs)
    grid = (cfg["seeds"], len(lrs))
    initial = np.asarray(runs.initial.val_loss).reshape(grid)
    final = np.asarray(runs.val_loss)[:, -1].reshape(grid)
    step_losses = np.asarray(runs.train_loss).reshape(*grid, cfg["epochs"], -1)
    with np.errstate(invalid="ignore", over="ignore"):
        curves = step_losses.mean(axis=-1)  # epoch means (NaN once a step is NaN)
    timing = {"sweep_seconds": timer.seconds, "machine": MACHINE}
    return lrs, initial, final, curves, timing


def summarize(lrs, initial, final):
    """Per learning rate: median ratio final/initial, diverged / barely-moved counts."""
    ratio = final / initial  # (seeds, lrs); NaN stays NaN
    diverged = ~np.isfinite(final) | (final > initial)
    barely = ~diverged & (final > BARELY_MOVED * initial)
    per_lr = []
    for j, lr in enumerate(lrs):
        ok = np.isfinite(final[:, j])
        per_lr.append(
            {
                "learning_rate": float(lr),
                "final_loss_median": float(np.median(final[:, j]))
                if ok.all()
                else None,
                "final_loss_per_seed": final[:, j],
                "final_over_initial_median": float(np.median(ratio[:, j]))
                if ok.all()
                else None,
                "diverged_seeds": int(diverged[:, j].sum()),
                "barely_moved_seeds": int(barely[:, j].sum()),
            }
        )
    # The best learning rate: lowest median final loss among runs that never diverged.
    med = np.array([r["final_loss_median"] or np.inf for r in per_lr])
    med[diverged.any(axis=0)] = np.inf
    best = int(np.argmin(med))
    return per_lr, diverged, barely, best


def plot_final_losses(ax, lrs, initial, final, best, diverged):
    """Final loss against learning rate: each seed, the median, the diverged
    (capped at 10x the initial loss) and the best."""
    init_med = float(np.median(initial))
    ceiling = 10 * init_med
    capped = np.where(np.isfinite(final), np.minimum(final, ceiling), ceiling)
    for s in range(final.shape[0]):
        label = "one seed" if s == 0 else None
        ax.plot(lrs, capped[s], ".", color="0.6", ms=4, label=label)
    med = np.median(capped, 0)
    ax.plot(lrs, med, "-", color="C0", label="median over seeds")
    div_cols = diverged.any(axis=0)
    label = "diverged (NaN/inf or > initial;\ncapped at 10x initial)"
    ax.plot(lrs[div_cols], med[div_cols], "x", color="C3", ms=8, mew=2, label=label)
    ax.axhline(init_med, color="k", ls="--", lw=1, label="initial loss")
    label = f"{BARELY_MOVED} x initial"
    ax.axhline(BARELY_MOVED * init_med, color="k", ls=":", lw=1, label=label)
    label = f"best: lr = {lrs[best]:.3g}"
    ax.plot(
        lrs[best], med[best], "o", mfc="none", color="C2", ms=10, mew=2, label=label
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate (plain SGD)")
    ax.set_ylabel("final training loss (cross-entropy)")
    ax.set_title("final loss vs learning rate")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3, which="both")


def displayed_curve(initial, curve, ceiling):
    """``(values, k)``: epochs 0..E of a curve as drawn. A run whose loss
    exceeds ``ceiling`` or is NaN at epoch ``k`` is drawn up to there, its
    epoch ``k`` at the ceiling (so every diverged run keeps a visible rising
    segment) and nothing after; ``k`` is None for a run that never does."""
    values = np.concatenate([[initial], curve]).astype(float)
    bad = ~np.isfinite(values) | (values > ceiling)
    if not bad.any():
        return values, None
    k = int(np.argmax(bad))
    values[k], values[k + 1 :] = ceiling, np.nan
    return values, k


def curve_groups(lrs, initial, curves, picks, ceiling):
    """The picked learning rates grouped by identical drawn curves (two rates
    that both blow up at epoch 1 draw the same segment: one legend entry)."""
    groups = []  # [values, k, [lr indices]]
    for j in picks:
        values, k = displayed_curve(initial[0, j], curves[0, j], ceiling)
        same = [g for g in groups if np.array_equal(g[0], values, equal_nan=True)]
        if same:
            same[0][2].append(j)
        else:
            groups.append([values, k, [j]])
    return groups


def plot_curves(ax, lrs, initial, curves, best, diverged):
    """Seed 0's epoch-mean loss curves at a few learning rates: the smallest,
    two in between, the best, the smallest that diverges and the largest.
    A diverged run ends in an x at the ceiling, its label says when."""
    ceiling = 10 * float(np.median(initial))
    div_cols = diverged.any(axis=0)
    first_bad = int(np.argmax(div_cols)) if div_cols.any() else len(lrs) - 1
    picks = [0, len(lrs) // 3, (len(lrs) // 3 + best) // 2, best, first_bad]
    picks = sorted(set(picks + [len(lrs) - 1]))
    low = np.nanmin(np.where(np.isfinite(curves[0]), curves[0], np.nan))
    epochs = np.arange(curves.shape[-1] + 1)
    for i, (values, k, members) in enumerate(
        curve_groups(lrs, initial, curves, picks, ceiling)
    ):
        label = "lr = " + ", ".join(f"{lrs[j]:.3g}" for j in members)
        label += " (best)" if best in members else ""
        label += f": diverged at epoch {k}" if k is not None else ""
        ax.plot(epochs, values, "-o", ms=2.5, color=f"C{i}", label=label)
        if k is not None:
            ax.plot(k, ceiling, "x", color=f"C{i}", ms=9, mew=2)
    ax.set_yscale("log")
    ax.set_ylim(0.5 * low, 1.5 * ceiling)
    ax.set_xlabel("epoch (0 = initialization)")
    ax.set_ylabel("training loss (epoch mean)")
    ax.set_title("loss curves, seed 0 (x: loss > 10x initial or NaN)")
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3, which="both")


def legend_visibility(ax) -> list[dict]:
    """Per legend entry of ``ax``: its finite points inside the axes' limits
    (``visible_points``) and how many of them no other entry also draws
    (``own_points``): an entry with none is hidden behind the others."""
    handles, labels = ax.get_legend_handles_labels()
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    points = []
    for line in handles:
        xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
        inside = np.isfinite(xy).all(1) & (xy[:, 0] >= min(x0, x1))
        inside &= (xy[:, 0] <= max(x0, x1)) & (xy[:, 1] >= min(y0, y1))
        inside &= xy[:, 1] <= max(y0, y1)
        points.append({tuple(p) for p in xy[inside]})
    return [
        {
            "label": label,
            "visible_points": len(mine),
            "own_points": len(
                mine - set().union(*(p for o, p in enumerate(points) if o != e))
            ),
        }
        for e, (label, mine) in enumerate(zip(labels, points))
    ]


def plot(args, lrs, initial, final, curves, best, diverged) -> dict:
    """Draw and save the figure; return its legends' visibility (for the JSON)."""
    plt = _common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.9))
    plot_final_losses(ax1, lrs, initial, final, best, diverged)
    plot_curves(ax2, lrs, initial, curves, best, diverged)
    fig.suptitle(
        "Learning rate: MLP 64-64-10 on digits, plain SGD, batch 32", fontsize=11
    )
    fig.tight_layout()
    _common.save_figure(fig, _common.figure_path(args))
    legends = {"loss_curves": legend_visibility(ax2)}
    plt.close(fig)
    return legends


def headline_of(lrs, initial, final, diverged, barely, best) -> dict:
    """The claim's numbers: the extremes of the grid and the best rate."""
    return {
        "largest_lr": float(lrs[-1]),
        "largest_lr_diverged_seeds": int(diverged[:, -1].sum()),
        "largest_lr_all_diverged": bool(diverged[:, -1].all()),
        "smallest_lr": float(lrs[0]),
        "smallest_lr_final_over_initial": float(np.median(final[:, 0] / initial[:, 0])),
        "smallest_lr_barely_moved": bool(barely[:, 0].all()),
        "best_lr": float(lrs[best]),
        "best_final_loss_median": float(np.median(final[:, best])),
        "best_final_over_initial": float(np.median(final[:, best] / initial[:, best])),
        "initial_loss_median": float(np.median(initial)),
        "smallest_diverging_lr": float(lrs[diverged.any(axis=0)].min())
        if diverged.any()
        else None,
    }


def setup_of(cfg: dict) -> dict:
    return {
        "dataset": "digits (1,293 training images)",
        "model": f"mlp({SIZES}, relu, he init)",
        "loss": LOSS,
        "optimizer": "jaxbp.optim.sgd(lr) (no momentum)",
        "batch_size": BATCH,
        "backprop": "manual",
        "training": "jaxbp.train.sweep over seeds x learning rates; seed s: "
        "fit(seed=s)'s initial parameters and batches",
        "diverged": "final training loss NaN/inf or > initial loss",
        "barely_moved": f"final training loss > {BARELY_MOVED} x initial loss",
        "final_loss": "loss on the whole training set after the last epoch",
        **cfg,
    }


def print_summary(cfg, lrs, per_lr) -> None:
    def number(value):
        return "nan" if value is None else value

    rows = [
        [
            r["learning_rate"],
            number(r["final_loss_median"]),
            number(r["final_over_initial_median"]),
            f"{r['diverged_seeds']}/{cfg['seeds']}",
            f"{r['barely_moved_seeds']}/{cfg['seeds']}",
        ]
        for r in per_lr
    ]
    _common.print_table(
        ["lr", "final loss (median)", "final/initial", "diverged", "barely moved"],
        rows,
        f"{NAME}: {cfg['seeds']} seeds x {len(lrs)} learning rates, "
        f"{cfg['epochs']} epochs, one sweep",
    )


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    started = time.perf_counter()
    cfg = config(args.quick)
    lrs, initial, final, curves, timing = run_grid(cfg)
    per_lr, diverged, barely, best = summarize(lrs, initial, final)
    headline = headline_of(lrs, initial, final, diverged, barely, best)
    results = {
        "setup": setup_of(cfg),
        "headline": headline,
        "learning_rates": lrs,
        "initial_loss": initial,
        "final_loss": final,
        "per_lr": per_lr,
        "curves_epoch_mean_train_loss": curves,
        "timing": timing,
    }
    print_summary(cfg, lrs, per_lr)
    results["figure_legends"] = plot(args, lrs, initial, final, curves, best, diverged)
    results["seconds"] = time.perf_counter() - started
    _common.write_json(args, results)
    print(
        f"best lr {headline['best_lr']:.3g}: final/initial "
        f"{headline['best_final_over_initial']:.3g}; smallest lr final/initial "
        f"{headline['smallest_lr_final_over_initial']:.3g}; largest lr diverged "
        f"{headline['largest_lr_diverged_seeds']}/{cfg['seeds']}; "
        f"{results['seconds']:.1f} s (sweep {timing['sweep_seconds']:.1f} s)"
    )
    return results


if __name__ == "__main__":
    main()
