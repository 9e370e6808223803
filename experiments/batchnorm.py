"""Batch normalization speeds up training: a 3x100 sigmoid net with and without BN.

``python experiments/batchnorm.py [--quick] [--out DIR]``

The setting of Ioffe & Szegedy (2015), Fig. 1(a), moved from MNIST to the
8x8 digits: an MLP with 3 fully connected hidden layers of 100 sigmoid units
and a 10-way softmax (cross-entropy), trained by plain SGD on mini-batches of
60; with batch norm, every hidden pre-activation is normalized
(``jaxbp.mlp(..., batchnorm=True)``: dense → batchnorm → sigmoid). Test
accuracy is measured after every epoch (21 steps: 1,293 training digits in
batches of 60), in evaluation mode, where batch norm uses its running
averages (``model.apply(..., state=state)``, ``train=False``).

Both nets start from the same weights for a given seed (Xavier normal, the
default for sigmoid; batch norm's γ = 1, β = 0) and see the same batches.
All seeds and learning rates of one net are one ``jaxbp.train.sweep``
(one compiled program; each seed's batches are ``fit(seed=s)``'s, the
learning rate a per-run hyperparameter of ``optim.sgd``). Gradients are jaxbp's
hand-written backward pass, batch norm's included.

The headline compares the two nets at the learning rate that gives the net
*without* batch norm its best final test accuracy (the baseline at its
best); the other learning rates are reported too. Full run: learning rates
0.1, 0.5, 2, 5 seeds, 100 epochs (2,100 steps). ``--quick``: lr 0.5, 2 seeds,
12 epochs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import data, optim
from jaxbp.train import init_params, sweep

LOSS = "cross_entropy"
SIZES = [64, 100, 100, 100, 10]
BATCH = 60
TARGETS = (0.90, 0.95)

FULL = {"seeds": 5, "epochs": 100, "learning_rates": [0.1, 0.5, 2.0]}
QUICK = {"seeds": 2, "epochs": 12, "learning_rates": [0.5]}


def starts(models, seeds: int, lrs):
    """Each net's ``(params, state)`` for every (learning rate, seed) run,
    stacked lr-major: the plain net's are ``fit(seed=s)``'s initial parameters
    (``init_params``), the batch-norm net's the same dense weights."""
    runs = [s for _ in lrs for s in range(seeds)]
    params, state = init_params(models["without BN"], runs)
    return {
        "without BN": (params, state),
        "with BN": with_batchnorm(models["with BN"], params, len(runs)),
    }


def with_batchnorm(bn_model, plain_params, runs: int):
    """(params, state) of ``bn_model`` starting from ``plain_params`` (stacked over
    runs): the same dense weights, and each batch-norm layer's own initial
    parameters and state (γ = 1, β = 0; running mean 0, variance 1)."""
    dense = iter(p for p in plain_params if p)
    params, state, width = [], [], bn_model.in_shape[-1]
    expected = jax.eval_shape(bn_model.init_with_state, jax.random.key(0))

    def stack(tree):
        return jax.tree.map(lambda a: jnp.broadcast_to(a, (runs, *a.shape)), tree)

    for layer in bn_model.layers:
        if layer.name == "batchnorm":
            _, p, s = layer.init(None, (width,), bn_model.dtype)
            params.append(stack(p))
            state.append(stack(s))
        elif layer.name == "dense":
            # a dense layer right before batch norm has no bias in the BN model
            wanted = expected[0][len(params)]
            params.append({k: v for k, v in next(dense).items() if k in wanted})
            state.append(())
            width = params[-1]["w"].shape[-1]
        else:
            params.append(())
            state.append(())
    got = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype),
        (tuple(params), tuple(state)),
    )
    if expected != got:
        raise ValueError("batch-norm model parameters do not match the plain model's")
    return tuple(params), tuple(state)


def train_runs(model, start, dataset, seeds: int, lrs, epochs: int):
    """One ``sweep`` over (learning rate, seed) runs: plain SGD, batches of 60
    (each seed's ``fit(seed=s)`` batches), test accuracy after every epoch in
    evaluation mode. Returns (test accuracy, epoch-mean train loss), each
    ``(lrs, seeds, epochs)``."""
    params, state = start
    rates = jnp.repeat(jnp.asarray(lrs, jnp.float32), seeds)
    result = sweep(
        model,
        dataset.train,
        dataset.test,
        loss=LOSS,
        optimizer=optim.sgd,
        hyperparams=rates,
        params=params,
        state=state,
        seeds=[s for _ in lrs for s in range(seeds)],
        batch_size=BATCH,
        epochs=epochs,
    )
    acc = np.asarray(result.val_accuracy, np.float64).reshape(len(lrs), seeds, epochs)
    loss = np.asarray(result.train_loss, np.float64)
    loss = loss.reshape(len(lrs), seeds, epochs, -1).mean(axis=-1)
    return acc, loss


def steps_to(curve, steps, target):
    """The first evaluated step at which ``curve`` >= target (None if never)."""
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int(steps[hit[0]]) if hit.size else None


def _log_steps_axis(ax):
    """A log step axis labelled with plain numbers (no crowded minor labels)."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot(args, results):
    plt = _common.pyplot()
    lrs = results["setup"]["learning_rates"]
    primary = results["headline"]["learning_rate"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
    steps = np.asarray(results["steps"])
    colors = {"without BN": "tab:blue", "with BN": "tab:red"}
    ax = axes[0]
    for name, color in colors.items():
        acc = np.asarray(results["test_accuracy"][name][str(primary)])  # seeds x evals
        med = np.median(acc, axis=0)
        ax.plot(steps, med, color=color, lw=1.8, label=f"{name} (median)")
        ax.fill_between(
            steps,
            acc.min(0),
            acc.max(0),
            color=color,
            alpha=0.2,
            label=f"{name}: min-max over {acc.shape[0]} seeds",
        )
    for target in TARGETS:
        ax.axhline(target, color="0.5", ls=":", lw=1)
    ax.plot([], [], color="0.5", ls=":", lw=1, label="90% and 95%")
    _log_steps_axis(ax)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("SGD step (batch 60)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"3x100 sigmoid MLP on digits, SGD lr={primary:g}")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, which="both")

    ax = axes[1]
    for name, color in colors.items():
        for lr, ls in zip(lrs, ["-", "--", ":", "-."]):
            acc = np.asarray(results["test_accuracy"][name][str(lr)])
            ax.plot(
                steps,
                np.median(acc, axis=0),
                color=color,
                ls=ls,
                label=f"{name}, lr={lr:g}",
            )
    _log_steps_axis(ax)
    finals = [
        np.median(np.asarray(acc[str(lr)])[:, -1])
        for acc in results["test_accuracy"].values()
        for lr in lrs
    ]
    zoom = min(finals) >= 0.85  # zoom in only when every curve ends inside
    ax.set_ylim(0.8 if zoom else 0.0, 1.0)
    ax.set_xlabel("SGD step (batch 60)")
    ax.set_ylabel("test accuracy (median over seeds)")
    ax.set_title("All learning rates" + (" (zoom on 0.8-1.0)" if zoom else ""))
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    _common.save_figure(fig, _common.figure_path(args))
    plt.close(fig)


PUBLISHED = {
    "source": "S. Ioffe & C. Szegedy, 'Batch Normalization: Accelerating Deep "
    "Network Training by Reducing Internal Covariate Shift', ICML 2015, "
    "Sec. 4.1 and Fig. 1(a)",
    "setup": "MNIST, 28x28 inputs, 3 fully connected hidden layers of 100 "
    "sigmoid units, weights initialized to small random Gaussian values, "
    "softmax cross-entropy; 50,000 steps of mini-batches of 60; BN added to "
    "each hidden layer",
    "result_qualitative": "Fig. 1(a): test accuracy vs steps; the BN net "
    "reaches higher test accuracy faster and ends higher (read off the plot: "
    "about 0.98 with BN vs about 0.95-0.96 without, on a 0.7-1.0 axis). "
    "Values read from a figure, not given as numbers in the text.",
}


def per_learning_rate(accuracy, train_loss, steps, lr) -> dict:
    """Each net's final test accuracy, steps to the targets and final training
    loss at one learning rate (medians over seeds)."""
    entry = {}
    for name in accuracy:
        acc = accuracy[name][str(lr)]
        med = np.median(acc, axis=0)
        entry[name] = {
            "final_test_accuracy": float(np.median(acc[:, -1])),
            **{
                f"steps_to_{target:.2f}": steps_to(med, steps, target)
                for target in TARGETS
            },
            "final_train_loss": float(np.median(train_loss[name][str(lr)][:, -1])),
        }
    return entry


def headline(accuracy, per_lr, steps, lrs) -> dict:
    """The two nets at the learning rate best for the net without BN."""
    primary = max(
        lrs, key=lambda lr: per_lr[str(lr)]["without BN"]["final_test_accuracy"]
    )
    marks = [s for s in (21, 105, 210, 420, 1050, 2100) if s <= steps[-1]]
    at_steps = {
        name: {
            str(s): float(np.median(acc[str(primary)][:, list(steps).index(s)]))
            for s in marks
        }
        for name, acc in accuracy.items()
    }
    bn, plain = per_lr[str(primary)]["with BN"], per_lr[str(primary)]["without BN"]
    return {
        "claim": "with batch norm the net reaches a given test accuracy in fewer "
        "steps than without, or is higher at the same step",
        "learning_rate": primary,
        "learning_rate_rule": "the one giving the net without BN its best final "
        "median test accuracy",
        "test_accuracy_at_step": at_steps,
        **{
            f"steps_to_{t:.2f}": {
                "with BN": bn[f"steps_to_{t:.2f}"],
                "without BN": plain[f"steps_to_{t:.2f}"],
            }
            for t in TARGETS
        },
        "final_test_accuracy": {
            "with BN": bn["final_test_accuracy"],
            "without BN": plain["final_test_accuracy"],
        },
        "bn_ahead_at_every_reported_step": all(
            at_steps["with BN"][str(s)] > at_steps["without BN"][str(s)] for s in marks
        ),
    }


def setup(dataset, steps_per_epoch, epochs, seeds, lrs) -> dict:
    """The JSON's description of the run."""
    return {
        "data": f"digits: {len(dataset.train.y)} train, {len(dataset.test.y)} test",
        "model": f"MLP {SIZES} sigmoid (Xavier normal init), with/without "
        "batchnorm before each sigmoid (momentum 0.9, eps 1e-5)",
        "optimizer": "sgd (no momentum)",
        "batch_size": BATCH,
        "steps_per_epoch": int(steps_per_epoch),
        "epochs": epochs,
        "seeds": seeds,
        "learning_rates": lrs,
        "evaluation": "test accuracy after every epoch, eval mode (running "
        "averages for BN)",
        "training": "jaxbp.train.sweep over (learning rate, seed); each seed's "
        "fit(seed=s) initial parameters and batches",
        "backprop": "manual",
    }


def report(results):
    """The printed table and one line per learning rate."""
    head = results["headline"]
    at_steps = head["test_accuracy_at_step"]
    _common.print_table(
        ["step", "test acc without BN", "test acc with BN"],
        [
            [s, at_steps["without BN"][s], at_steps["with BN"][s]]
            for s in at_steps["with BN"]
        ],
        title=f"Medians over {results['setup']['seeds']} seeds, SGD "
        f"lr={head['learning_rate']:g} (batch {BATCH}); {results['seconds']:.1f} s "
        "(a machine shared with other jobs)",
    )
    for lr, entry in results["per_learning_rate"].items():
        print(
            f"lr {lr}: steps to 90%: without {entry['without BN']['steps_to_0.90']}, "
            f"with {entry['with BN']['steps_to_0.90']}; final: without "
            f"{entry['without BN']['final_test_accuracy']:.3f}, with "
            f"{entry['with BN']['final_test_accuracy']:.3f}"
        )


def main(argv=None) -> dict:
    args = _common.parse_args(
        "batchnorm",
        "Test accuracy vs steps for a 3x100 sigmoid MLP with and without batch norm.",
        argv,
    )
    cfg = QUICK if args.quick else FULL
    seeds, epochs, lrs = cfg["seeds"], cfg["epochs"], cfg["learning_rates"]
    dataset = data.load("digits", seed=0)
    models = {
        "without BN": jaxbp.mlp(SIZES, "sigmoid"),
        "with BN": jaxbp.mlp(SIZES, "sigmoid", batchnorm=True),
    }
    accuracy, train_loss, seconds = {}, {}, {}
    with _common.Timer() as total:
        start = starts(models, seeds, lrs)
        for name, model in models.items():
            with _common.Timer() as timer:
                acc, loss = train_runs(model, start[name], dataset, seeds, lrs, epochs)
            seconds[name] = timer.seconds
            accuracy[name] = {str(lr): acc[i] for i, lr in enumerate(lrs)}
            train_loss[name] = {str(lr): loss[i] for i, lr in enumerate(lrs)}
    steps_per_epoch = len(dataset.train.y) // BATCH
    steps = steps_per_epoch * np.arange(1, epochs + 1)
    per_lr = {str(lr): per_learning_rate(accuracy, train_loss, steps, lr) for lr in lrs}
    results = {
        "setup": setup(dataset, steps_per_epoch, epochs, seeds, lrs),
        "headline": headline(accuracy, per_lr, steps, lrs),
        "per_learning_rate": per_lr,
        "steps": steps.tolist(),
        "test_accuracy": {
            name: {lr: a.tolist() for lr, a in d.items()}
            for name, d in accuracy.items()
        },
        "train_loss_median": {
            name: {lr: np.median(a, 0).tolist() for lr, a in d.items()}
            for name, d in train_loss.items()
        },
        "train_seconds": seconds,
        "seconds": total.seconds,
        "published": PUBLISHED,
    }
    plot(args, results)
    _common.write_json(args, results)
    report(results)
    return results


if __name__ == "__main__":
    main()
