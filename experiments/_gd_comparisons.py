"""The comparisons of ``gd_variants.py``: its loss curves at equal epochs,
equal updates and equal seconds.

Pure NumPy on the measured curves: every variant's seed-mean loss, measured
every ``eval_every`` updates, is compared at the budgets all three reached
(epochs, updates, seconds), at the common learning rate and, for the time
budget, at each variant's best learning rate.
"""

from __future__ import annotations

import numpy as np

N_TRAIN = 1280
VARIANTS = ("full", "stochastic", "minibatch")
BATCH = {"full": N_TRAIN, "stochastic": 1, "minibatch": 32}
LR = 0.02  # the common learning rate of the per-epoch / per-update comparison
TARGET = 0.1  # training loss for "time to target"


def loss_at(axis, losses, when) -> float:
    """The last measured loss at or before ``when`` on ``axis`` (epochs,
    updates or seconds; budgets in epochs and updates are measured points)."""
    return float(losses[int(np.flatnonzero(axis <= when * (1 + 1e-9))[-1])])


def first_time_below(times, losses, target):
    hit = np.flatnonzero(losses <= target)
    return float(times[hit[0]]) if hit.size else None


def order(values: dict) -> list:
    """Variant names, lowest loss first (NaN/inf last)."""
    return sorted(values, key=lambda v: values[v] if np.isfinite(values[v]) else np.inf)


def curve_axes(cfg, curves, timing) -> dict:
    """Per variant, the measured points in updates, epochs and seconds."""
    axes = {}
    for v in VARIANTS:
        updates = np.arange(curves[v].shape[-1]) * cfg["eval_every"][v]
        axes[v] = {
            "updates": updates,
            "epochs": updates / (N_TRAIN // BATCH[v]),
            "seconds": updates * timing[v]["update_seconds_median"],
        }
    return axes


def budgets(cfg, axes) -> dict:
    """The budgets every variant reached: epochs, updates and seconds."""
    return {
        "epochs": min(cfg["epochs"].values()),
        "updates": min(cfg["epochs"][v] * (N_TRAIN // BATCH[v]) for v in VARIANTS),
        "seconds": min(float(axes[v]["seconds"][-1]) for v in VARIANTS),
    }


class Curves:
    """The seed-mean curves ``mean[v]`` (lrs, points) on their ``axes``."""

    def __init__(self, axes, mean):
        self.axes, self.mean = axes, mean

    def at(self, key: str, when, choice: dict) -> dict:
        """Each variant's loss at ``when`` on axis ``key``, at lr index ``choice[v]``."""
        return {
            v: loss_at(self.axes[v][key], self.mean[v][choice[v]], when)
            for v in VARIANTS
        }

    def orders_at_every_lr(self, key: str, when, lrs) -> dict:
        return {
            float(lr): order(self.at(key, when, dict.fromkeys(VARIANTS, j)))
            for j, lr in enumerate(lrs)
        }


def tuned_lrs(curves: Curves, seconds, n_lrs) -> dict:
    """Each variant's best learning rate for the time budget: the lowest loss at
    ``seconds`` (what one would pick to train fastest by the clock)."""
    tuned = {}
    for v in VARIANTS:
        axis, mean = curves.axes[v]["seconds"], curves.mean[v]
        scores = [loss_at(axis, mean[j], seconds) for j in range(n_lrs)]
        tuned[v] = int(np.nanargmin(np.where(np.isfinite(scores), scores, np.nan)))
    return tuned


def per_epoch(curves: Curves, budget, common, lrs) -> dict:
    points = sorted({1, budget["epochs"]})
    losses = {e: curves.at("epochs", e, common) for e in points}
    return {
        "loss_at_epoch": losses,
        "order_best_first": {e: order(d) for e, d in losses.items()},
        "order_at_every_lr": curves.orders_at_every_lr("epochs", budget["epochs"], lrs),
    }


def per_update(curves: Curves, budget, common, lrs) -> dict:
    total = budget["updates"]
    points = sorted(
        u
        for u in {total // 4, total}
        if all(u in curves.axes[v]["updates"] for v in VARIANTS)
    )
    losses = {u: curves.at("updates", u, common) for u in points}
    return {
        "loss_at_update": losses,
        "order_best_first": {u: order(d) for u, d in losses.items()},
        "full_over_minibatch": {
            u: d["full"] / d["minibatch"] for u, d in losses.items()
        },
        "order_at_every_lr": curves.orders_at_every_lr("updates", total, lrs),
    }


def per_second(curves: Curves, budget, common, tuned, lrs) -> dict:
    seconds = budget["seconds"]
    losses = curves.at("seconds", seconds, common)
    tuned_losses = curves.at("seconds", seconds, tuned)
    return {
        "common_seconds": seconds,
        "loss_at_common_seconds": losses,
        "order_best_first": order(losses),
        "tuned_lr": {v: lrs[tuned[v]] for v in VARIANTS},
        "loss_at_common_seconds_tuned_lr": tuned_losses,
        "order_best_first_tuned_lr": order(tuned_losses),
        "target_loss": TARGET,
        "seconds_to_target": {
            name: {
                v: first_time_below(
                    curves.axes[v]["seconds"], curves.mean[v][choice[v]], TARGET
                )
                for v in VARIANTS
            }
            for name, choice in (("common_lr", common), ("tuned_lr", tuned))
        },
    }


def analyse(cfg, curves, timing):
    """Per-epoch, per-update and per-second comparisons of the seed-mean curves."""
    lrs = list(cfg["lrs"])
    axes = curve_axes(cfg, curves, timing)
    with np.errstate(invalid="ignore"):
        mean = {v: curves[v].mean(axis=0) for v in VARIANTS}  # (lrs, points)
    means = Curves(axes, mean)
    budget = budgets(cfg, axes)
    common = dict.fromkeys(VARIANTS, lrs.index(LR))
    tuned = tuned_lrs(means, budget["seconds"], len(lrs))
    comparisons = {
        "common_lr": LR,
        "per_epoch": per_epoch(means, budget, common, lrs),
        "per_update": per_update(means, budget, common, lrs),
        "per_second": per_second(means, budget, common, tuned, lrs),
    }
    return axes, mean, tuned, comparisons, headline_of(comparisons, budget)


def headline_of(comparisons, budget) -> dict:
    epochs = comparisons["per_epoch"]["loss_at_epoch"]
    at_update = comparisons["per_update"]["loss_at_update"][budget["updates"]]
    seconds = comparisons["per_second"]
    return {
        "common_lr": LR,
        "common_epochs": budget["epochs"],
        "common_updates": budget["updates"],
        "common_seconds": budget["seconds"],
        "per_epoch_order": order(epochs[budget["epochs"]]),
        "per_epoch_order_epoch1": order(epochs[1]),
        "per_update_order": order(at_update),
        "per_update_full_over_minibatch": at_update["full"] / at_update["minibatch"],
        "per_update_stochastic_over_full": at_update["stochastic"] / at_update["full"],
        "per_second_order_common_lr": seconds["order_best_first"],
        "per_second_order_tuned_lr": seconds["order_best_first_tuned_lr"],
        "tuned_lr": seconds["tuned_lr"],
    }
