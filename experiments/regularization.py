"""Regularization on a training set small enough to memorize: none, L2, dropout, early stopping.

``python experiments/regularization.py [--quick] [--out DIR]``

Setup: 200 training digits (``jaxbp.data.load("digits", n=200)``; the fixed
144-image validation and 360-image test splits), a 64-256-10 ReLU MLP (He
init; ~19k parameters, ~100 per training example), Adam (1e-3), batches of
32, 300 epochs, cross-entropy, the hand-written backward pass. Seeds vary
the initialization, the shuffling and the dropout masks; we report medians
over seeds. Runs with the same seed start from the same weights and see the
same batches, so test accuracies are also compared seed by seed (paired).

* **none**: no regularization.
* **L2**: the coupled penalty ½λΣ‖W‖² on the weight matrices added to the
  loss, ``dW += λW`` before Adam (``sweep(l2=...)``, what ``fit(l2=λ)``
  does). λ is chosen from a grid by the median final validation loss; every
  λ is reported.
* **dropout**: ``mlp(..., dropout=0.5)`` (hidden units dropped with p = 0.5).
* **early stopping**: the unregularized run stopped as ``fit(patience=20)``
  stops it: the parameters of the epoch with the lowest validation loss,
  training ending once 20 epochs pass without a new lowest.

The **gap** is measured in evaluation mode (no dropout, no penalty) on the
whole training set and the validation set, at the end of training (at the
selected epoch for early stopping): loss gap = validation loss − training
loss, accuracy gap = training accuracy − validation accuracy. Test accuracy
is on the 360 held-out test digits. The JSON has the per-epoch medians
and the per-seed numbers. ``--quick``: 4 seeds, 100 epochs, λ = 0.01 only.

Everything trains through ``jaxbp.train.sweep``: one sweep trains "none"
and every λ for every seed (λ = 0 is "none"; ``l2`` one value per run),
a second the dropout net. Seed ``s`` starts from ``fit(seed=s)``'s initial
weights and sees its batches and dropout keys (``init_params``, ``seeds=``);
a probe measures the training and test sets after every epoch, the sweep's
own evaluation the validation set. The full run also trains seed 0 with
``fit(patience=20)`` and records how closely it matches (``fit_check``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import data, losses, optim
from jaxbp.train import fit, init_params, sweep

LOSS = "cross_entropy"
SIZES = [64, 256, 10]
N_TRAIN = 200
BATCH = 32
LEARNING_RATE = 1e-3
DROPOUT = 0.5
PATIENCE = 20

FULL = {"seeds": 8, "epochs": 300, "lambdas": [1e-4, 1e-3, 1e-2]}
QUICK = {"seeds": 4, "epochs": 100, "lambdas": [1e-2]}


def params_for(model, plain_params):
    """``plain_params`` (of the model without dropout) laid out for ``model``,
    which has the same layers plus parameter-free dropout layers: the same
    initial weights for both, seed by seed."""
    leaves = iter(plain_params)
    params = tuple(
        () if layer.name == "dropout" else next(leaves) for layer in model.layers
    )
    expected = jax.eval_shape(model.init, jax.random.key(0))
    got = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params)
    if jax.tree.structure(expected) != jax.tree.structure(got) or expected != got:
        raise ValueError(
            "the dropout model's parameters do not match the plain model's"
        )
    return params


def split_probe(splits: dict):
    """``probe(model, params, state)``: eval-mode loss and accuracy on each
    named split (the whole training set and the test set)."""
    loss_fn = losses.get(LOSS)

    def probe(model, params, state):
        out = {}
        for name, (x, y) in splits.items():
            logits = model.apply(params, x, state=state)
            targets = jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype)
            right = jnp.argmax(logits, axis=-1) == y
            out[name] = (
                loss_fn.value(logits, targets),
                jnp.mean(right.astype(logits.dtype)),
            )
        return out

    return probe


def train_runs(model, dataset, params, seeds, l2, epochs) -> dict:
    """Every run (``params`` stacked, run ``i`` on ``fit(seed=seeds[i])``'s
    batches and dropout keys, coupled L2 ``l2[i]``) in one ``sweep``; the
    per-epoch eval-mode metrics, each of shape (runs, epochs)."""
    result = sweep(
        model,
        dataset.train,
        dataset.val,
        loss=LOSS,
        optimizer=optim.adam(LEARNING_RATE),
        params=params,
        seeds=seeds,
        l2=l2,
        batch_size=BATCH,
        epochs=epochs,
        probe=split_probe({"train": dataset.train, "test": dataset.test}),
    )
    (trl, tra), (tel, tea) = result.probes["train"], result.probes["test"]
    history = {
        "train_loss": trl,
        "train_acc": tra,
        "val_loss": result.val_loss,
        "val_acc": result.val_accuracy,
        "test_loss": tel,
        "test_acc": tea,
    }
    return {k: np.asarray(v) for k, v in history.items()}


def early_stop_epoch(val_loss, patience) -> int:
    """The epoch index (0-based) ``fit(patience=...)`` returns: the lowest
    validation loss seen before ``patience`` epochs pass without a new lowest."""
    best, best_epoch = np.inf, 0
    for epoch, value in enumerate(val_loss, start=1):
        if value < best:
            best, best_epoch = value, epoch
        elif epoch - best_epoch >= patience:
            break
    return best_epoch - 1


def summarize(history, index=None) -> dict:
    """Medians over seeds of the metrics at the last epoch, or at ``index[s]``
    (one epoch per seed); ``history`` = arrays of shape (seeds, epochs)."""
    seeds = history["train_loss"].shape[0]
    at = np.full(seeds, -1) if index is None else np.asarray(index)
    pick = {k: v[np.arange(seeds), at] for k, v in history.items()}
    loss_gap = pick["val_loss"] - pick["train_loss"]
    acc_gap = pick["train_acc"] - pick["val_acc"]
    out = {k: float(np.median(v)) for k, v in pick.items()}
    out.update(
        loss_gap=float(np.median(loss_gap)),
        acc_gap=float(np.median(acc_gap)),
        per_seed_loss_gap=loss_gap.tolist(),
        per_seed_test_acc=pick["test_acc"].tolist(),
    )
    return out


def plot(args, curves, table):
    plt = _common.pyplot()
    fig, (ax1, ax2, ax3) = plt.subplots(
        1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1.4, 1, 1]}
    )
    colors = {"none": "k", "L2": "tab:blue", "dropout": "tab:green"}
    for name, hist in curves.items():
        epochs = np.arange(1, hist["train_loss"].shape[1] + 1)
        c = colors[name]
        ax1.plot(epochs, np.median(hist["train_loss"], 0), color=c, ls=":", lw=1.2)
        ax1.plot(epochs, np.median(hist["val_loss"], 0), color=c, lw=1.5, label=name)
    stop = table["early_stopping"]["epoch"]
    ax1.axvline(stop, color="tab:red", ls="--", lw=1, label="early stop (median)")
    ax1.plot([], [], color="0.4", ls=":", label="train (dotted)")
    ax1.plot([], [], color="0.4", label="validation (solid)")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy (eval mode, median over seeds)")
    ax1.set_title(f"Digits, {N_TRAIN} training examples, MLP 64-256-10")
    ax1.legend(fontsize=7, loc="lower left", ncol=2)
    ax1.grid(alpha=0.3)

    names = list(table)
    labels = [n.replace("early_stopping", "early\nstopping") for n in names]
    xs = np.arange(len(names))
    jitter = np.linspace(-0.15, 0.15, len(table["none"]["per_seed_test_acc"]))
    for ax, key, seed_key, title in (
        (ax2, "loss_gap", "per_seed_loss_gap", "Loss gap: val − train (eval mode)"),
        (ax3, "test_acc", "per_seed_test_acc", "Test accuracy (360 digits)"),
    ):
        for i, name in enumerate(names):
            ax.scatter(i + jitter, table[name][seed_key], s=12, color="0.55", zorder=2)
            ax.hlines(
                table[name][key], i - 0.3, i + 0.3, color="tab:red", lw=2, zorder=3
            )
            ax.annotate(
                f"{table[name][key]:.3f}",
                (i, table[name][key]),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                fontsize=7,
                color="tab:red",
            )
        ax.set_xticks(xs, labels, fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    ax2.set_ylabel("validation loss − training loss")
    ax3.set_ylabel("test accuracy")
    ax3.scatter([], [], s=12, color="0.55", label="one seed")
    ax3.plot([], [], color="tab:red", lw=2, label="median")
    ax3.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    _common.save_figure(fig, _common.figure_path(args))
    plt.close(fig)


def fit_check(model, dataset, epochs, sweep_val_loss, sweep_stop) -> dict:
    """Seed 0's early-stopped run by ``jaxbp.train.fit`` itself, against the
    same run inside the sweep (the same initial weights and batches)."""
    result = fit(
        model,
        dataset.train,
        dataset.val,
        loss=LOSS,
        optimizer=optim.adam(LEARNING_RATE),
        batch_size=BATCH,
        epochs=epochs,
        patience=PATIENCE,
        seed=0,
    )
    fit_val = np.asarray([h["val_loss"] for h in result.history])
    return {
        "fit_best_epoch_seed0": result.best_epoch,
        "vmapped_early_stop_epoch_seed0": sweep_stop,
        "fit_epochs_run": len(result.history),
        "max_abs_val_loss_diff": float(
            np.max(np.abs(fit_val - sweep_val_loss[: len(fit_val)]))
        ),
    }


def train_all(cfg, dataset) -> dict:
    """Per-epoch histories (seeds, epochs) of "none" (λ = 0), every λ and
    dropout, and the seconds each sweep took: one sweep over (λ, seed)
    with ``l2`` per run, one over the seeds for the dropout net."""
    seeds, lambdas = list(range(cfg["seeds"])), cfg["lambdas"]
    grid = [0.0, *lambdas]
    plain = jaxbp.mlp(SIZES, "relu")
    dropped = jaxbp.mlp(SIZES, "relu", dropout=DROPOUT)
    runs = [s for _ in grid for s in seeds]
    params, _ = init_params(plain, runs)
    l2 = np.repeat(np.asarray(grid, np.float32), len(seeds))
    with _common.Timer() as t_plain:
        plain_hist = train_runs(plain, dataset, params, runs, l2, cfg["epochs"])
    per_lambda = [
        {k: v[i * len(seeds) : (i + 1) * len(seeds)] for k, v in plain_hist.items()}
        for i in range(len(grid))
    ]
    dropout_params = params_for(dropped, init_params(plain, seeds)[0])
    with _common.Timer() as t_dropout:
        dropout_hist = train_runs(
            dropped, dataset, dropout_params, seeds, 0.0, cfg["epochs"]
        )
    return {
        "none": per_lambda[0],
        "per_lambda": dict(zip(lambdas, per_lambda[1:])),
        "dropout": dropout_hist,
        "seconds": {"none_and_l2": t_plain.seconds, "dropout": t_dropout.seconds},
        "plain_model": plain,
    }


def method_table(runs) -> tuple[dict, dict]:
    """(table of the four methods, table of every λ); L2's λ is the one with
    the lowest median final validation loss."""
    lambda_table = {f"{lam:g}": summarize(h) for lam, h in runs["per_lambda"].items()}
    best = min(runs["per_lambda"], key=lambda lam: lambda_table[f"{lam:g}"]["val_loss"])
    none_hist = runs["none"]
    stops = [early_stop_epoch(v, PATIENCE) for v in none_hist["val_loss"]]
    table = {
        "none": summarize(none_hist),
        "L2": summarize(runs["per_lambda"][best]),
        "dropout": summarize(runs["dropout"]),
        "early_stopping": summarize(none_hist, stops),
    }
    table["L2"]["weight_decay"] = best  # the coupled L2 λ (sweep's l2=)
    table["dropout"]["rate"] = DROPOUT
    table["early_stopping"]["patience"] = PATIENCE
    table["early_stopping"]["epoch"] = float(np.median(np.asarray(stops) + 1))
    table["early_stopping"]["per_seed_epoch"] = [s + 1 for s in stops]
    return table, lambda_table


def headline(table) -> dict:
    none = table["none"]
    regs = ["L2", "dropout", "early_stopping"]
    out = {
        "claim": "without regularization the train/val gap is large (train loss "
        "<< val loss); each regularizer reduces the gap; at least one improves "
        "test accuracy over none",
        "none_train_loss": none["train_loss"],
        "none_val_loss": none["val_loss"],
        "loss_gap": {k: v["loss_gap"] for k, v in table.items()},
        "acc_gap": {k: v["acc_gap"] for k, v in table.items()},
        "test_acc": {k: v["test_acc"] for k, v in table.items()},
        "reduces_loss_gap": {k: table[k]["loss_gap"] < none["loss_gap"] for k in regs},
        "reduces_acc_gap": {k: table[k]["acc_gap"] < none["acc_gap"] for k in regs},
        "improves_test_acc": {k: table[k]["test_acc"] > none["test_acc"] for k in regs},
        "paired_test_acc_vs_none": {},
    }
    none_acc = np.asarray(none["per_seed_test_acc"])
    for k in regs:
        diff = np.asarray(table[k]["per_seed_test_acc"]) - none_acc
        out["paired_test_acc_vs_none"][k] = {
            "median_difference": float(np.median(diff)),
            "seeds_better": int(np.sum(diff > 1e-6)),
            "seeds_equal": int(np.sum(np.abs(diff) <= 1e-6)),
            "seeds_worse": int(np.sum(diff < -1e-6)),
        }
    out["none_has_largest_loss_gap"] = all(out["reduces_loss_gap"].values())
    out["some_regularizer_improves_test_acc"] = any(out["improves_test_acc"].values())
    return out


def setup(cfg, dataset) -> dict:
    return {
        "data": f"digits, n_train={N_TRAIN}, val={len(dataset.val.y)}, "
        f"test={len(dataset.test.y)}",
        "model": f"MLP {SIZES} relu (He init)",
        "optimizer": f"adam({LEARNING_RATE})",
        "batch_size": BATCH,
        "epochs": cfg["epochs"],
        "seeds": cfg["seeds"],
        "lambda_grid": cfg["lambdas"],
        "lambda_selection": "lowest median final validation loss",
        "l2": "coupled: ½λΣ‖W‖² added to the loss (sweep's l2=, as fit(l2=))",
        "dropout": DROPOUT,
        "patience": PATIENCE,
        "backprop": "manual",
        "runs": "seed s: fit(seed=s)'s initial weights, batches and dropout keys",
        "machine": "2 CPU cores shared with other jobs (seconds on a loaded machine)",
    }


def print_summary(table, headline_, cfg, seconds):
    rows = [
        [
            name,
            v["train_loss"],
            v["val_loss"],
            v["loss_gap"],
            v["acc_gap"],
            v["test_acc"],
        ]
        for name, v in table.items()
    ]
    _common.print_table(
        ["method", "train loss", "val loss", "loss gap", "acc gap", "test acc"],
        rows,
        title=f"Medians over {cfg['seeds']} seeds, {cfg['epochs']} epochs (L2 "
        f"λ={table['L2']['weight_decay']:g}, dropout {DROPOUT}, patience "
        f"{PATIENCE}); {seconds:.1f} s",
    )
    paired = headline_["paired_test_acc_vs_none"]
    print(
        "test accuracy vs none, same seeds (better/equal/worse): "
        + ", ".join(
            f"{k} {v['seeds_better']}/{v['seeds_equal']}/{v['seeds_worse']}"
            for k, v in paired.items()
        )
    )


PUBLISHED = {
    "note": "No reference numbers for this exact setup. Srivastava et al. "
    "2014 (JMLR 15, 'Dropout'): dropout lowers test error of MLPs on MNIST "
    "(e.g. 1.60% -> 1.35% for a 3x1024 logistic net; Table 2) and "
    "reduces overfitting on small training sets (Fig. 10).",
}


def main(argv=None) -> dict:
    args = _common.parse_args(
        "regularization",
        "None vs L2 vs dropout vs early stopping on 200 training digits.",
        argv,
    )
    cfg = QUICK if args.quick else FULL
    dataset = data.load("digits", n=N_TRAIN, seed=0)
    with _common.Timer() as total:
        runs = train_all(cfg, dataset)
    table, lambda_table = method_table(runs)
    best_hist = runs["per_lambda"][table["L2"]["weight_decay"]]
    curves = {"none": runs["none"], "L2": best_hist, "dropout": runs["dropout"]}
    plot(args, curves, table)
    results = {
        "setup": setup(cfg, dataset),
        "table": table,
        "lambda_table": lambda_table,
        "headline": headline(table),
        "curves_median": {
            name: {k: np.median(v, 0).tolist() for k, v in hist.items()}
            for name, hist in curves.items()
        },
        "train_seconds": runs["seconds"],
        "published": PUBLISHED,
    }
    if not args.quick:
        results["fit_check"] = fit_check(
            runs["plain_model"],
            dataset,
            cfg["epochs"],
            runs["none"]["val_loss"][0],
            table["early_stopping"]["per_seed_epoch"][0],
        )
    results["seconds"] = total.seconds
    _common.write_json(args, results)
    print_summary(table, results["headline"], cfg, total.seconds)
    return results


if __name__ == "__main__":
    main()
