"""Optimizers: jaxbp.optim's hand-rolled SGD ... AdamW against optax's, and against each other.

``python experiments/optimizers.py [--quick] [--out DIR]``

Seven optimizers, each built twice, from ``jaxbp.optim`` and from ``optax``
with the same arguments: SGD, SGD with momentum 0.9, Nesterov momentum 0.9,
Adagrad, RMSprop, Adam, AdamW (weight decay 0.01). Every one trains the same
MLP (64-64-10, ReLU, He init) on the digits (cross-entropy, mini-batches of
32, manual backprop) from the same initial parameters on the same mini-batches
(seed ``s``: ``fit(seed=s)``'s), for each learning rate of a small log grid
and several seeds: each optimizer and library is one ``jaxbp.train.sweep``
over seeds x learning rates (14 compiled programs).

1. **jaxbp vs optax**: for every optimizer the largest relative difference
   ``|L_jaxbp - L_optax| / |L_optax|`` between the two per-step training-loss
   curves (every step, every learning rate and seed where the loss is finite),
   and the largest difference of the final parameters relative to their
   largest magnitude.
2. **Convergence**: for every optimizer, the learning rate with the lowest
   mean final validation loss; at that learning rate, the epochs (and steps)
   until the epoch-mean training loss first reaches a target, the final
   training loss (whole training set) and the test accuracy (means over seeds).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import jax
import numpy as np
import optax

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import backprop as bp
from jaxbp import data, optim
from jaxbp.train import init_params, metrics, sweep

NAME = "optimizers"
LOSS = "cross_entropy"
SIZES = [64, 64, 10]
BATCH = 32
TARGET = 0.1  # epoch-mean training loss to reach
LIBRARIES = {"jaxbp": optim, "optax": optax}
MACHINE = "2 CPU cores shared with other jobs (loaded): seconds are indicative"

# name -> (label, builder(library, learning_rate))
OPTIMIZERS = {
    "sgd": ("SGD", lambda lib, lr: lib.sgd(lr)),
    "momentum": ("momentum 0.9", lambda lib, lr: lib.sgd(lr, momentum=0.9)),
    "nesterov": (
        "Nesterov 0.9",
        lambda lib, lr: lib.sgd(lr, momentum=0.9, nesterov=True),
    ),
    "adagrad": ("Adagrad", lambda lib, lr: lib.adagrad(lr)),
    "rmsprop": ("RMSprop", lambda lib, lr: lib.rmsprop(lr)),
    "adam": ("Adam", lambda lib, lr: lib.adam(lr)),
    "adamw": ("AdamW (wd 0.01)", lambda lib, lr: lib.adamw(lr, weight_decay=0.01)),
}


def config(quick: bool) -> dict:
    if quick:
        return {"lrs": [1e-3, 1e-2, 1e-1], "seeds": 1, "epochs": 4}
    return {
        "lrs": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],
        "seeds": 3,
        "epochs": 30,
    }


def final_measures(model, x, t, xs, ys):
    """The sweep's probe: whole-training-set loss and test accuracy (eval mode)."""

    def probe(model_, params, state):
        train_loss, _ = metrics(model_, LOSS, params, state, x, t, None)
        _, test_accuracy = metrics(model_, LOSS, params, state, xs, ys, None)
        return {"train_loss": train_loss, "test_accuracy": test_accuracy}

    return probe


def run_all(cfg: dict):
    """Every optimizer x library: one ``jaxbp.train.sweep`` over seeds x
    learning rates (seed-major runs; seed ``s`` starts from ``fit(seed=s)``'s
    parameters and trains on its batches), evaluated once, after the last
    step: validation loss, and through the probe the whole-training-set loss
    and the test accuracy."""
    ds = data.load("digits")
    model = jaxbp.mlp(SIZES, activation="relu")
    lrs = np.asarray(cfg["lrs"], np.float32)
    seeds, rates = _common.seed_grid(cfg["seeds"], lrs)
    params, state = init_params(model, seeds)
    x, t, _, _ = bp.prepare(model, None, *ds.train, LOSS, state)
    xs, ys, _, _ = bp.prepare(model, None, *ds.test, LOSS, state)
    steps_per_epoch = x.shape[0] // BATCH
    grid = (cfg["seeds"], len(lrs))
    out, seconds = {}, {}
    for name, (_, builder) in OPTIMIZERS.items():
        for lib_name, lib in LIBRARIES.items():
            with _common.Timer() as timer:
                runs = sweep(
                    model,
                    ds.train,
                    ds.val,
                    loss=LOSS,
                    optimizer=functools.partial(builder, lib),
                    hyperparams=rates,
                    params=params,
                    state=state,
                    seeds=seeds,
                    batch_size=BATCH,
                    epochs=cfg["epochs"],
                    eval_every=cfg["epochs"] * steps_per_epoch,
                    probe=final_measures(model, x, t, xs, ys),
                )
                runs = jax.device_get(runs)
            seconds[f"{name} {lib_name}"] = timer.seconds
            out[name, lib_name] = {
                "step_losses": np.asarray(runs.train_loss).reshape(*grid, -1),
                "train_loss": runs.probes["train_loss"][:, -1].reshape(grid),
                "val_loss": runs.val_loss[:, -1].reshape(grid),
                "test_accuracy": runs.probes["test_accuracy"][:, -1].reshape(grid),
                "params": runs.params,
            }
    timing = {"sweep_seconds": seconds, "machine": MACHINE}
    return lrs, steps_per_epoch, out, timing


def compare_libraries(a: dict, b: dict) -> dict:
    """Largest relative differences between jaxbp's (a) and optax's (b) runs."""
    la, lb = np.asarray(a["step_losses"]), np.asarray(b["step_losses"])
    finite = np.isfinite(la) & np.isfinite(lb)
    rel = np.abs(la - lb)[finite] / np.maximum(np.abs(lb[finite]), 1e-30)
    pa, pb = jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])
    param_rel = []
    for u, v in zip(pa, pb):
        ok = np.isfinite(u) & np.isfinite(v)
        scale = np.max(np.abs(v[ok])) if ok.any() else 1.0
        param_rel.append(float(np.max(np.abs(u - v)[ok]) / scale) if ok.any() else 0.0)
    return {
        "max_rel_diff_loss": float(rel.max()) if rel.size else 0.0,
        "steps_compared": int(finite.sum()),
        "nonfinite_mismatches": int((np.isfinite(la) != np.isfinite(lb)).sum()),
        "bit_identical_losses": bool(np.array_equal(la, lb, equal_nan=True)),
        "max_rel_diff_params": max(param_rel),
    }


def epochs_to_target(curve: np.ndarray, target: float):
    """First 1-based epoch whose mean training loss is <= target (None if never)."""
    hit = np.flatnonzero(np.isfinite(curve) & (curve <= target))
    return int(hit[0]) + 1 if hit.size else None


def epoch_means(step_losses, epochs: int, steps_per_epoch: int) -> np.ndarray:
    """(seeds, lrs, steps) per-step losses -> (seeds, lrs, epochs) epoch means."""
    losses = np.asarray(step_losses)
    with np.errstate(invalid="ignore", over="ignore"):
        return losses.reshape(*losses.shape[:2], epochs, steps_per_epoch).mean(-1)


def summarize(cfg, lrs, steps_per_epoch, out):
    epochs = cfg["epochs"]
    rows, per_optimizer = [], {}
    for name, (label, _) in OPTIMIZERS.items():
        a, b = out[name, "jaxbp"], out[name, "optax"]
        agreement = compare_libraries(a, b)
        curves, curves_optax = (
            epoch_means(r["step_losses"], epochs, steps_per_epoch) for r in (a, b)
        )  # (seeds, lrs, epochs)
        val = np.asarray(a["val_loss"])  # (seeds, lrs)
        mean_val = np.where(np.isfinite(val).all(0), val.mean(0), np.inf)
        best = int(np.argmin(mean_val))
        reach = [epochs_to_target(curves[s, best], TARGET) for s in range(len(val))]
        reached = [r for r in reach if r is not None]
        median_epochs = (
            float(np.median(reached)) if len(reached) == len(reach) else None
        )
        per_optimizer[name] = {
            "label": label,
            "jaxbp_vs_optax": agreement,
            "best_lr": float(lrs[best]),
            "epochs_to_target_per_seed": reach,
            "epochs_to_target_median": median_epochs,
            "steps_to_target_median": None
            if median_epochs is None
            else median_epochs * steps_per_epoch,
            "final_train_loss_mean": float(
                np.mean(np.asarray(a["train_loss"])[:, best])
            ),
            "val_loss_mean": float(mean_val[best]),
            "test_accuracy_mean": float(
                np.mean(np.asarray(a["test_accuracy"])[:, best])
            ),
            "test_accuracy_optax_mean": float(
                np.mean(np.asarray(b["test_accuracy"])[:, best])
            ),
            "per_lr": {
                "learning_rates": lrs,
                "val_loss_mean": mean_val,
                "final_train_loss_mean": np.mean(np.asarray(a["train_loss"]), 0),
                "test_accuracy_mean": np.mean(np.asarray(a["test_accuracy"]), 0),
            },
            "curves_jaxbp": curves,  # (seeds, lrs, epochs): epoch-mean training loss
            "curves_optax": curves_optax,
        }
        rows.append(
            [
                label,
                f"{agreement['max_rel_diff_loss']:.2g}",
                "yes" if agreement["bit_identical_losses"] else "no",
                float(lrs[best]),
                "-" if median_epochs is None else f"{median_epochs:g}",
                per_optimizer[name]["final_train_loss_mean"],
                per_optimizer[name]["test_accuracy_mean"],
            ]
        )
    return per_optimizer, rows


def plot(args, cfg, per_optimizer):
    plt = _common.pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.2), sharex=True)
    axes = axes.ravel()
    epochs = np.arange(1, cfg["epochs"] + 1)
    for i, (name, r) in enumerate(per_optimizer.items()):
        ax = axes[i]
        best = list(r["per_lr"]["learning_rates"]).index(r["best_lr"])
        ax.plot(
            epochs,
            r["curves_jaxbp"][0, best],
            "-",
            color=f"C{i}",
            lw=2.5,
            label="jaxbp.optim",
        )
        ax.plot(
            epochs, r["curves_optax"][0, best], "--", color="k", lw=1.2, label="optax"
        )
        ax.axhline(TARGET, color="0.5", ls=":", lw=1)
        ax.set_yscale("log")
        diff = r["jaxbp_vs_optax"]["max_rel_diff_loss"]
        same = " (bit-identical)" if r["jaxbp_vs_optax"]["bit_identical_losses"] else ""
        ax.set_title(
            f"{r['label']}, lr {r['best_lr']:g}\nmax rel. diff {diff:.1g}{same}",
            fontsize=9,
        )
        ax.grid(alpha=0.3, which="both")
        if i % 4 == 0:
            ax.set_ylabel("training loss (epoch mean)")
        if i == 0:
            ax.legend(fontsize=8)
        axes[7].plot(
            epochs,
            r["curves_jaxbp"][0, best],
            "-",
            color=f"C{i}",
            label=f"{r['label']} ({r['test_accuracy_mean']:.1%})",
        )
    ax = axes[7]
    ax.axhline(TARGET, color="0.5", ls=":", lw=1, label=f"target {TARGET}")
    ax.set_yscale("log")
    ax.set_title("all (jaxbp), best lr each\n(test accuracy)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.03, 1.0))
    ax.grid(alpha=0.3, which="both")
    for ax in axes[4:]:
        ax.set_xlabel("epoch")
    fig.suptitle(
        "Optimizers: jaxbp.optim (solid) vs optax (dashed), MLP 64-64-10 on digits, "
        f"batch {BATCH}, seed 0, same init and batches",
        fontsize=11,
    )
    fig.tight_layout()
    path = _common.figure_path(args)
    _common.save_figure(fig, path, dpi=80)
    plt.close(fig)
    return path


def setup_of(cfg, steps_per_epoch) -> dict:
    return {
        "dataset": "digits (1,293 training images)",
        "model": f"mlp({SIZES}, relu, he init)",
        "loss": LOSS,
        "batch_size": BATCH,
        "steps_per_epoch": steps_per_epoch,
        "backprop": "manual",
        "training": "jaxbp.train.sweep per optimizer and library over seeds x "
        "learning rates; seed s: fit(seed=s)'s initial parameters and batches",
        "optax_version": optax.__version__,
        "jax_x64": bool(jax.config.jax_enable_x64),
        "target_train_loss": TARGET,
        "best_lr": "lowest mean (over seeds) final validation loss, jaxbp runs",
        "rel_diff": "max over steps, lrs, seeds of |L_jaxbp - L_optax| / |L_optax| "
        "on the per-step (pre-update) mini-batch losses, where both are finite",
        **cfg,
    }


def headline_of(per_optimizer) -> dict:
    """The largest jaxbp/optax difference, the fastest and the most accurate."""
    reached = [
        (r["steps_to_target_median"], k)
        for k, r in per_optimizer.items()
        if r["steps_to_target_median"] is not None
    ]
    differences = {
        k: r["jaxbp_vs_optax"]["max_rel_diff_loss"] for k, r in per_optimizer.items()
    }
    return {
        "max_rel_diff_any_optimizer": max(differences.values()),
        "max_rel_diff": differences,
        "fastest_to_target": min(reached)[1] if reached else None,
        "best_test_accuracy": max(
            (r["test_accuracy_mean"], k) for k, r in per_optimizer.items()
        )[1],
    }


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    started = time.perf_counter()
    cfg = config(args.quick)
    lrs, steps_per_epoch, out, timing = run_all(cfg)
    per_optimizer, rows = summarize(cfg, lrs, steps_per_epoch, out)
    headline = headline_of(per_optimizer)
    worst = headline["max_rel_diff_any_optimizer"]
    results = {
        "setup": setup_of(cfg, steps_per_epoch),
        "headline": headline,
        "optimizers": per_optimizer,
        "timing": timing,
    }
    _common.print_table(
        [
            "optimizer",
            "max rel diff",
            "bit-identical",
            "best lr",
            f"epochs to {TARGET}",
            "final train loss",
            "test acc",
        ],
        rows,
        f"{NAME}: jaxbp.optim vs optax, {cfg['seeds']} seed(s) x {len(lrs)} lrs, "
        f"{cfg['epochs']} epochs x {steps_per_epoch} steps",
    )
    plot(args, cfg, per_optimizer)
    results["seconds"] = time.perf_counter() - started
    _common.write_json(args, results)
    print(
        f"largest jaxbp/optax relative difference: {worst:.3g}; "
        f"{results['seconds']:.1f} s"
    )
    return results


if __name__ == "__main__":
    main()
