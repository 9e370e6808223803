"""Learning rate: too small barely moves, too large diverges, in between it learns.

``python experiments/learning_rate.py [--quick] [--out DIR]``

One compiled program trains an MLP (64-64-10, ReLU, He init) on the digits
with plain SGD (mini-batches of 32, manual backprop) for every learning rate of
a log grid from 1e-5 to 10 and several seeds at once: a ``lax.scan`` of
``jaxbp.train.make_step`` vmapped over seeds and learning rates. Seed ``s``
starts from ``fit(seed=s)``'s initial parameters. For every run we measure
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
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import backprop as bp
from jaxbp import data, optim
from jaxbp.train import TrainState, make_step

NAME = "learning_rate"
LOSS = "cross_entropy"
SIZES = [64, 64, 10]
BATCH = 32
BARELY_MOVED = 0.9  # final / initial above this: "barely moves"


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


def run_grid(cfg: dict):
    """Train every (seed, learning rate) pair in one vmapped, jitted program.

    The step is ``jaxbp.train.make_step`` (manual backprop, ``jaxbp.optim.sgd``),
    run by one ``lax.scan`` over precomputed mini-batch indices; initial
    parameters and the shuffles are made outside the program (drawing them
    inside, as ``make_train_fn`` does, costs seconds of compile time here).
    """
    ds = data.load("digits")
    model = jaxbp.mlp(SIZES, activation="relu")
    decades = np.log10(cfg["lr_max"]) - np.log10(cfg["lr_min"])
    num = round(float(decades * cfg["per_decade"])) + 1
    lrs = np.logspace(np.log10(cfg["lr_min"]), np.log10(cfg["lr_max"]), num)
    lrs = lrs.astype(np.float32)
    params, state = _common.initial_params(model, cfg["seeds"])
    x, t, _, _ = bp.prepare(model, None, *ds.train, LOSS, state)
    n = x.shape[0]
    index = np.stack(
        [_common.batch_indices(s, n, BATCH, cfg["epochs"]) for s in range(cfg["seeds"])]
    )

    def one_run(params0, index, lr):
        step = make_step(model, LOSS, optim.sgd(lr), backprop="manual")

        def body(carry, idx):
            return step(carry, jnp.take(x, idx, axis=0), jnp.take(t, idx, axis=0), None)

        tx = optim.sgd(lr)
        start = TrainState(params0, state, tx.init(params0))
        final, step_losses = jax.lax.scan(body, start, index)

        def full_loss(p):  # the whole training set, evaluation mode
            return jaxbp.loss(model, p, x, t, loss=LOSS, state=state, train=False)

        initial, last = full_loss(params0), full_loss(final.params)
        return initial, last, step_losses

    grid = jax.jit(
        jax.vmap(jax.vmap(one_run, (None, None, 0)), (0, 0, None))
    )  # seeds x learning rates
    t0 = time.perf_counter()
    compiled = grid.lower(params, index, lrs).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    initial, final, step_losses = jax.block_until_ready(compiled(params, index, lrs))
    run_seconds = time.perf_counter() - t0
    steps = n // BATCH
    step_losses = np.asarray(step_losses)
    curves = step_losses.reshape(*step_losses.shape[:2], cfg["epochs"], steps)
    with np.errstate(invalid="ignore", over="ignore"):
        curves = curves.mean(axis=-1)  # epoch means (NaN once a step is NaN)
    timing = {"compile_seconds": compile_seconds, "run_seconds": run_seconds}
    return lrs, np.asarray(initial), np.asarray(final), curves, timing


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


def plot(args, lrs, initial, final, curves, best, diverged):
    plt = _common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.9))
    init_med = float(np.median(initial))
    ceiling = 10 * init_med
    for s in range(final.shape[0]):
        shown = np.where(np.isfinite(final[s]), np.minimum(final[s], ceiling), ceiling)
        ax1.plot(
            lrs, shown, ".", color="0.6", ms=4, label="one seed" if s == 0 else None
        )
    med = np.median(
        np.where(np.isfinite(final), np.minimum(final, ceiling), ceiling), 0
    )
    ax1.plot(lrs, med, "-", color="C0", label="median over seeds")
    div_cols = diverged.any(axis=0)
    ax1.plot(
        lrs[div_cols],
        med[div_cols],
        "x",
        color="C3",
        ms=8,
        mew=2,
        label="diverged (NaN/inf or > initial;\ncapped at 10x initial)",
    )
    ax1.axhline(init_med, color="k", ls="--", lw=1, label="initial loss")
    ax1.axhline(
        BARELY_MOVED * init_med,
        color="k",
        ls=":",
        lw=1,
        label=f"{BARELY_MOVED} x initial",
    )
    ax1.plot(
        lrs[best],
        med[best],
        "o",
        mfc="none",
        color="C2",
        ms=10,
        mew=2,
        label=f"best: lr = {lrs[best]:.3g}",
    )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("learning rate (plain SGD)")
    ax1.set_ylabel("final training loss (cross-entropy)")
    ax1.set_title("final loss vs learning rate")
    ax1.legend(fontsize=7, loc="lower left")
    ax1.grid(alpha=0.3, which="both")

    epochs = np.arange(curves.shape[-1] + 1)
    # A few curves (seed 0): the smallest, two in between, the best, the
    # smallest that diverges and the largest.
    first_bad = int(np.argmax(div_cols)) if div_cols.any() else len(lrs) - 1
    picks = [0, len(lrs) // 3, (len(lrs) // 3 + best) // 2, best, first_bad]
    picks = sorted(set(picks + [len(lrs) - 1]))
    low = np.nanmin(np.where(np.isfinite(curves[0]), curves[0], np.nan))
    for i, j in enumerate(picks):
        c = np.concatenate([[initial[0, j]], curves[0, j]])
        bad = ~np.isfinite(c) | (c > ceiling)
        shown = np.where(bad, np.nan, c)
        label = f"lr = {lrs[j]:.3g}" + (" (best)" if j == best else "")
        ax2.plot(epochs, shown, "-o", ms=2.5, color=f"C{i}", label=label)
        if bad.any():
            k = int(np.argmax(bad))
            ax2.plot(k, ceiling, "x", color=f"C{i}", ms=9, mew=2)
    ax2.set_yscale("log")
    ax2.set_ylim(0.5 * low, 1.5 * ceiling)
    ax2.set_xlabel("epoch (0 = initialization)")
    ax2.set_ylabel("training loss (epoch mean)")
    ax2.set_title("loss curves, seed 0 (x: loss > 10x initial or NaN)")
    ax2.legend(fontsize=7, loc="lower left")
    ax2.grid(alpha=0.3, which="both")
    fig.suptitle(
        "Learning rate: MLP 64-64-10 on digits, plain SGD, batch 32", fontsize=11
    )
    fig.tight_layout()
    path = _common.figure_path(args)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    started = time.perf_counter()
    cfg = config(args.quick)
    lrs, initial, final, curves, timing = run_grid(cfg)
    per_lr, diverged, barely, best = summarize(lrs, initial, final)
    headline = {
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
    results = {
        "setup": {
            "dataset": "digits (1,293 training images)",
            "model": f"mlp({SIZES}, relu, he init)",
            "loss": LOSS,
            "optimizer": "jaxbp.optim.sgd(lr) (no momentum)",
            "batch_size": BATCH,
            "backprop": "manual",
            "diverged": "final training loss NaN/inf or > initial loss",
            "barely_moved": f"final training loss > {BARELY_MOVED} x initial loss",
            "final_loss": "loss on the whole training set after the last epoch",
            **cfg,
        },
        "headline": headline,
        "learning_rates": lrs,
        "initial_loss": initial,
        "final_loss": final,
        "per_lr": per_lr,
        "curves_epoch_mean_train_loss": curves,
        "timing": timing,
    }
    _common.print_table(
        ["lr", "final loss (median)", "final/initial", "diverged", "barely moved"],
        [
            [
                r["learning_rate"],
                r["final_loss_median"] if r["final_loss_median"] is not None else "nan",
                r["final_over_initial_median"]
                if r["final_over_initial_median"] is not None
                else "nan",
                f"{r['diverged_seeds']}/{cfg['seeds']}",
                f"{r['barely_moved_seeds']}/{cfg['seeds']}",
            ]
            for r in per_lr
        ],
        f"{NAME}: {cfg['seeds']} seeds x {len(lrs)} learning rates, "
        f"{cfg['epochs']} epochs, one vmapped program",
    )
    plot(args, lrs, initial, final, curves, best, diverged)
    results["seconds"] = time.perf_counter() - started
    _common.write_json(args, results)
    print(
        f"best lr {headline['best_lr']:.3g}: final/initial "
        f"{headline['best_final_over_initial']:.3g}; smallest lr final/initial "
        f"{headline['smallest_lr_final_over_initial']:.3g}; largest lr diverged "
        f"{headline['largest_lr_diverged_seeds']}/{cfg['seeds']}; "
        f"{results['seconds']:.1f} s (compile {timing['compile_seconds']:.1f} s)"
    )
    return results


if __name__ == "__main__":
    main()
