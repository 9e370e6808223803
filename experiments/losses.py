"""Losses: MSE vs cross-entropy vs hinge, and the learning slowdown of MSE on saturated sigmoids.

``python experiments/losses.py [--quick] [--out DIR]``

**1. Saturation (Nielsen, "Neural Networks and Deep Learning", ch. 3).** One
sigmoid neuron, one input ``x = 1``, output ``a = σ(z)``, ``z = w x + b``,
trained by plain gradient descent with the same learning rate under two
losses, with jaxbp's hand-written backward pass:

- MSE: ``jaxbp.mlp([1, 1])`` followed by ``layers.activation("sigmoid")``,
  loss ``mse`` = ½ (a − y)² on the sigmoid output, so
  ``dL/dz = (a − y) σ'(z)``: the σ'(z) factor is tiny when the neuron saturates;
- cross-entropy: the same ``jaxbp.mlp([1, 1])`` with ``binary_cross_entropy``
  on the logit ``z`` (the sigmoid is inside the loss), so ``dL/dz = a − y``:
  σ' cancels.

Started in saturation on the wrong side (``z0 = w + b`` large and negative,
target ``y = 1``, ``w = b = z0 / 2``) for a grid of ``z0``, we count the
steps until the output error ``|y − a|`` falls to half its initial value.
Nielsen's own two starts (``y = 0``; ``w, b = 0.6, 0.9`` and ``2, 2``) run too.
Every start of one loss and one target trains in one ``jaxbp.train.sweep``
(the one example as the batch at every step, ``eval_every=1`` and a probe
recording the output after every step).

**2. Digits.** The same MLP (64-64-10, ReLU, He init, same initial
parameters and mini-batches) trained with plain SGD (batch 32) under
softmax cross-entropy, MSE on the 10 linear outputs against one-hot targets,
MSE on 10 sigmoid outputs, and the multiclass (Weston-Watkins) hinge loss;
each at the learning rate (of a small grid) with the best validation
accuracy; test accuracy (argmax of the outputs) per epoch. One ``sweep`` per
loss trains every (seed, learning rate) run: seed ``s`` starts from
``fit(seed=s)``'s initial parameters and sees its batches (``init_params``,
``seeds=``), the learning rates are ``hyperparams`` of ``optim.sgd``; a probe
records validation and test accuracy after every epoch.
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
from jaxbp import data, optim
from jaxbp.layers import activation
from jaxbp.train import batch_schedule, init_params, sweep

NAME = "losses"
SAT_LR = 0.15  # Nielsen's learning rate for the quadratic cost
SIZES = [64, 64, 10]
BATCH = 32
PUBLISHED = {
    "source": "M. Nielsen, Neural Networks and Deep Learning, ch. 3, 'The "
    "cross-entropy cost function', http://neuralnetworksanddeeplearning.com/chap3.html",
    "setup": "one sigmoid neuron, input x = 1, target y = 0; starts w = 0.6, b = 0.9 "
    "(output 0.82) and w = 2.0, b = 2.0 (output 0.98); learning rate 0.15 for the "
    "quadratic cost; the cross-entropy demo uses learning rate 0.005",
    "claim": "qualitative: from the saturated start (output 0.98) the quadratic "
    "cost learns very slowly at first, the cross-entropy cost does not",
}
DIGIT_LOSSES = {
    "cross_entropy": "cross-entropy (softmax)",
    "mse": "MSE, linear outputs",
    "mse_sigmoid": "MSE, sigmoid outputs",
    "hinge": "hinge (multiclass)",
}


def config(quick: bool) -> dict:
    if quick:
        return {
            "z0": [-2.0, -4.0, -6.0],
            "sat_steps": 3000,
            "lrs": [0.03, 0.3],
            "seeds": 1,
            "epochs": 4,
        }
    return {
        "z0": [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0],
        "sat_steps": 30000,
        "lrs": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        "seeds": 3,
        "epochs": 30,
    }


# ------------------------------------------------------------------ saturation


def neuron_models():
    """(mse model: dense → sigmoid, cross-entropy model: dense → logit)."""
    logit = jaxbp.mlp([1, 1])
    with_sigmoid = jaxbp.sequential(*logit.layers, activation("sigmoid"), in_shape=(1,))
    return with_sigmoid, logit


def neuron_params(model, w, b):
    """The model's parameters with weights ``w`` and biases ``b`` (arrays
    (k,)): k runs stacked on a leading axis, as ``sweep`` takes them."""
    params = [{"w": jnp.reshape(w, (-1, 1, 1)), "b": jnp.reshape(b, (-1, 1))}]
    params += [()] * (len(model.layers) - 1)
    return tuple(params)


def neuron_sweep(model, loss, w, b, target, steps):
    """Plain GD from each start (w_k, b_k) on the one example (x = 1, y =
    ``target``), through ``sweep``: ``(outputs (k, steps), losses (k, steps),
    initial |grad| (k,))``, outputs and losses before each update."""
    x = np.ones((1, 1), np.float32)
    y = np.full((1, 1), target, np.float32)

    def probe(model, params, state):
        _, grads = jaxbp.loss_and_grad(model, params, x, y, loss=loss, state=state)
        return {
            "output": jax.nn.sigmoid(params[0]["w"][0, 0] + params[0]["b"][0]),
            "grad_norm": jnp.sqrt(grads[0]["w"][0, 0] ** 2 + grads[0]["b"][0] ** 2),
        }

    result = sweep(
        model,
        (x, y),
        loss=loss,
        optimizer=optim.sgd(SAT_LR),
        params=neuron_params(model, w, b),
        schedule=batch_schedule(0, 1, 1, steps),  # the one example, every step
        eval_every=1,
        probe=probe,
    )
    initial, after = result.initial.probes, result.probes
    outputs = np.concatenate([initial["output"][:, None], after["output"]], axis=1)
    return (
        outputs[:, :steps],
        np.asarray(result.train_loss),
        np.asarray(initial["grad_norm"]),
    )


def saturation_runs(cfg):
    """Both losses from every start: ``(starts, {loss: (outputs, losses,
    initial |grad|)})``; starts with target 1 (the z0 grid) and target 0
    (Nielsen's) are separate sweeps (the data is shared within a sweep)."""
    z0 = np.asarray(cfg["z0"], np.float32)
    starts = {
        "w": np.concatenate([z0 / 2, [0.6, 2.0]]).astype(np.float32),
        "b": np.concatenate([z0 / 2, [0.9, 2.0]]).astype(np.float32),
        "y": np.concatenate([np.ones_like(z0), [0.0, 0.0]]).astype(np.float32),
    }
    mse_model, ce_model = neuron_models()
    runs = {
        "mse": (mse_model, "mse"),
        "cross_entropy": (ce_model, "binary_cross_entropy"),
    }
    out = {}
    for name, (model, loss) in runs.items():
        parts = [
            neuron_sweep(
                model,
                loss,
                starts["w"][pick],
                starts["b"][pick],
                target,
                cfg["sat_steps"],
            )
            for target in (1.0, 0.0)
            for pick in [starts["y"] == target]
        ]
        out[name] = tuple(np.concatenate(arrays) for arrays in zip(*parts))
    return starts, out


def start_entry(starts, out, k, nielsen, kept) -> dict:
    """One start: each loss's steps until the output error halves, its initial
    gradient norm, and the error curve at the ``kept`` step counts."""
    y = float(starts["y"][k])
    entry = {
        "z0": float(starts["w"][k] + starts["b"][k]),
        "w0": float(starts["w"][k]),
        "b0": float(starts["b"][k]),
        "target": y,
        "nielsen": nielsen,
    }
    for name, (outputs, values, gnorm) in out.items():
        error = np.abs(y - outputs[k])
        half = np.flatnonzero(error <= 0.5 * error[0])
        entry[name] = {
            "initial_output": float(outputs[k][0]),
            "initial_error": float(error[0]),
            "initial_grad_norm": float(gnorm[k]),
            "steps_to_half_error": int(half[0]) if half.size else None,
            "final_output": float(outputs[k][-1]),
            "final_loss": float(values[k][-1]),
            "curve_steps": kept,  # updates done
            "error_curve": error[kept],
        }
    a0 = entry["mse"]["initial_output"]
    entry["initial_grad_ratio_mse_over_ce"] = (
        entry["mse"]["initial_grad_norm"] / entry["cross_entropy"]["initial_grad_norm"]
    )
    entry["sigmoid_prime_z0"] = a0 * (1 - a0)  # what the ratio should be: σ'(z0)
    return entry


def saturation(cfg):
    """Per start (the z0 grid, then Nielsen's two): both losses' measurements."""
    with _common.Timer() as t:
        starts, out = saturation_runs(cfg)
    # Curves are kept at ~200 log-spaced step counts (0, 1, 2, ..., S - 1).
    total = cfg["sat_steps"]
    kept = np.unique(np.round(np.logspace(0, np.log10(total), 200)).astype(int)) - 1
    kept = np.unique(np.concatenate([[0], kept[kept < total]]))
    grid = len(cfg["z0"])
    per_start = [
        start_entry(starts, out, k, k >= grid, kept) for k in range(len(starts["y"]))
    ]
    return per_start, {"sweep_seconds": t.seconds}


# ------------------------------------------------------------------ digits


def digit_models(net):
    """loss name -> (model, loss): the same net, plus a sigmoid for mse_sigmoid."""
    with_sigmoid = jaxbp.sequential(
        *net.layers, activation("sigmoid"), in_shape=(SIZES[0],)
    )
    return {
        "cross_entropy": (net, "cross_entropy"),
        "mse": (net, "mse"),
        "mse_sigmoid": (with_sigmoid, "mse"),
        "hinge": (net, "hinge"),
    }


def accuracy_probe(ds):
    """``probe(model, params, state)``: eval-mode accuracy (argmax of the
    outputs) on the validation and test sets, whatever the loss."""
    splits = {"val": ds.val, "test": ds.test}

    def probe(model, params, state):
        return {
            name: jnp.mean(
                jnp.argmax(model.apply(params, split.x, state=state), axis=-1)
                == split.y
            )
            for name, split in splits.items()
        }

    return probe


def digits_sweep(cfg, ds, model, loss, params, seeds, lrs):
    """One loss, every (seed, lr) run in one ``sweep``: per-epoch metrics of
    shape (seeds, lrs, epochs)."""
    extra = len(model.layers) - len(params)
    labels = (
        np.eye(SIZES[-1], dtype=np.float32)[ds.train.y] if loss == "mse" else ds.train.y
    )
    result = sweep(
        model,
        (ds.train.x, labels),
        loss=loss,
        optimizer=optim.sgd,
        hyperparams=jnp.asarray(lrs),
        params=tuple(params) + ((),) * extra,
        seeds=seeds,
        batch_size=BATCH,
        epochs=cfg["epochs"],
        probe=accuracy_probe(ds),
    )
    shape = (cfg["seeds"], len(cfg["lrs"]), cfg["epochs"])
    train_loss = np.asarray(result.train_loss).reshape(*shape, -1).mean(axis=-1)
    return {
        "train_loss": train_loss,
        "val_accuracy": np.asarray(result.probes["val"]).reshape(shape),
        "test_accuracy": np.asarray(result.probes["test"]).reshape(shape),
    }


def best_lr_summary(name, m, lrs) -> dict:
    """The learning rate with the best mean final validation accuracy among
    the runs that stayed finite, and its test accuracy."""
    final_val = m["val_accuracy"][:, :, -1].mean(axis=0)  # (lrs,)
    finite = np.isfinite(m["train_loss"]).all(axis=(0, 2))
    best = int(np.argmax(np.where(finite, final_val, -1.0)))
    test = m["test_accuracy"][:, best, -1]
    return {
        "label": DIGIT_LOSSES[name],
        "best_lr": float(lrs[best]),
        "test_accuracy_mean": float(test.mean()),
        "test_accuracy_std": float(test.std()),
        "test_accuracy_per_seed": test,
        "val_accuracy_mean": float(final_val[best]),
        "per_lr_val_accuracy_mean": final_val,
        "per_lr_finite": finite,
        "test_accuracy_curve_mean": m["test_accuracy"][:, best].mean(axis=0),
        "train_loss_curve_mean": m["train_loss"][:, best].mean(axis=0),
        "curves": m,
    }


def digits(cfg):
    """Four losses, same net, same init and batches; best lr by val accuracy."""
    ds = data.load("digits")
    net = jaxbp.mlp(SIZES, activation="relu")
    lrs = np.asarray(cfg["lrs"], np.float32)
    seeds, rates = _common.seed_grid(cfg["seeds"], lrs)  # fit(seed=s)'s runs
    params, _ = init_params(net, seeds)
    summary, seconds = {}, {}
    for name, (model, loss) in digit_models(net).items():
        with _common.Timer() as t:
            m = digits_sweep(cfg, ds, model, loss, params, seeds, rates)
        seconds[name] = t.seconds
        summary[name] = best_lr_summary(name, m, lrs)
    return lrs, summary, {"sweep_seconds": seconds}


# ------------------------------------------------------------------ output


def plot_error_curves(ax, per_start):
    """Output error against steps for four starts of the z0 grid, both losses."""
    shown = [e for e in per_start if not e["nielsen"]]
    shown = shown[:: max(1, len(shown) // 4)][:4]
    for i, e in enumerate(shown):
        steps = np.maximum(e["mse"]["curve_steps"], 0.7)  # 0 updates at x = 0.7
        ax.plot(
            steps,
            e["mse"]["error_curve"],
            "-",
            color=f"C{i}",
            label=f"MSE, z0 = {e['z0']:g}",
        )
        ax.plot(
            steps,
            e["cross_entropy"]["error_curve"],
            "--",
            color=f"C{i}",
            label=f"cross-entropy, z0 = {e['z0']:g}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("gradient steps done (0 drawn at 0.7)")
    ax.set_ylabel("output error |y - σ(z)|  (y = 1)")
    ax.set_title(f"one sigmoid neuron started saturated, lr {SAT_LR}", fontsize=10)
    ax.legend(fontsize=7.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax.grid(alpha=0.3, which="both")


def plot_steps_to_half(ax, cfg, per_start):
    """Steps until the error halves against z0, both losses."""
    z0 = [e["z0"] for e in per_start if not e["nielsen"]]
    for name, style, label in (
        ("mse", "o-", "MSE on σ(z)"),
        ("cross_entropy", "s--", "cross-entropy on z"),
    ):
        vals = [e[name]["steps_to_half_error"] for e in per_start if not e["nielsen"]]
        reached = [(z, v) for z, v in zip(z0, vals) if v is not None]
        missed = [z for z, v in zip(z0, vals) if v is None]
        if reached:
            ax.plot(*zip(*reached), style, label=label)
        if missed:
            ax.plot(
                missed,
                [cfg["sat_steps"]] * len(missed),
                "x",
                color="C3",
                ms=8,
                mew=2,
                label=f"{label}: not within {cfg['sat_steps']} steps",
            )
    ax.set_yscale("log")
    ax.set_xlabel("initial pre-activation z0 (target 1)")
    ax.set_ylabel("steps until the error halves")
    ax.set_title("escaping saturation: MSE crawls (σ'(z0) factor)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")


def plot_digits(ax, cfg, summary):
    """Test accuracy per epoch of each loss at its best learning rate."""
    epochs = np.arange(1, cfg["epochs"] + 1)
    for i, (name, s) in enumerate(summary.items()):
        ax.plot(
            epochs,
            100 * s["test_accuracy_curve_mean"],
            "-o",
            ms=2.5,
            color=f"C{i}",
            label=f"{s['label']}, lr {s['best_lr']:g}: "
            f"{100 * s['test_accuracy_mean']:.1f}%",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(max(0, ax.get_ylim()[0]), 100)
    ax.set_title(f"digits, MLP 64-64-10, SGD batch {BATCH}, best lr each", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)


def plot(args, cfg, per_start, summary):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.6))
    plot_error_curves(axes[0], per_start)
    plot_steps_to_half(axes[1], cfg, per_start)
    plot_digits(axes[2], cfg, summary)
    fig.suptitle("Losses: MSE vs cross-entropy vs hinge", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, _common.figure_path(args))
    plt.close(fig)


def slower(e):
    """MSE steps / CE steps to halve the error (inf when MSE never got there)."""
    m = e["mse"]["steps_to_half_error"]
    c = e["cross_entropy"]["steps_to_half_error"]
    if c is None:
        return None
    return float("inf") if m is None else m / max(c, 1)


def ce_faster(e) -> bool:
    m = e["mse"]["steps_to_half_error"]
    c = e["cross_entropy"]["steps_to_half_error"]
    return c is not None and (m is None or c < m)


def headline(per_start, summary) -> dict:
    saturated = [e for e in per_start if not e["nielsen"]]
    return {
        "saturation_lr": SAT_LR,
        "steps_to_half_error": {
            e["z0"]: {
                "mse": e["mse"]["steps_to_half_error"],
                "cross_entropy": e["cross_entropy"]["steps_to_half_error"],
            }
            for e in saturated
        },
        "mse_over_ce_steps": {e["z0"]: slower(e) for e in saturated},
        "ce_faster_at_every_z0": all(ce_faster(e) for e in saturated),
        "digits_test_accuracy": {
            k: s["test_accuracy_mean"] for k, s in summary.items()
        },
    }


def print_tables(cfg, per_start, summary):
    never = f">{cfg['sat_steps']}"
    _common.print_table(
        ["z0", "a0", "MSE steps", "CE steps", "MSE/CE", "grad ratio", "σ'(z0)"],
        [
            [
                e["z0"] if not e["nielsen"] else f"{e['z0']:g} (Nielsen, y=0)",
                e["mse"]["initial_output"],
                e["mse"]["steps_to_half_error"] or never,
                e["cross_entropy"]["steps_to_half_error"] or never,
                slower(e) if slower(e) is not None else "-",
                e["initial_grad_ratio_mse_over_ce"],
                e["sigmoid_prime_z0"],
            ]
            for e in per_start
        ],
        f"{NAME} 1: steps until the output error halves, lr {SAT_LR}",
    )
    _common.print_table(
        ["loss", "best lr", "test accuracy", "std"],
        [
            [s["label"], s["best_lr"], s["test_accuracy_mean"], s["test_accuracy_std"]]
            for s in summary.values()
        ],
        f"{NAME} 2: digits, {cfg['seeds']} seed(s), {cfg['epochs']} epochs",
    )


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    cfg = config(args.quick)
    with _common.Timer() as total:
        per_start, sat_timing = saturation(cfg)
        lrs, summary, digits_timing = digits(cfg)
    results = {
        "setup": {
            "saturation": "one sigmoid neuron, x = 1, plain GD, lr "
            f"{SAT_LR} for both losses; MSE = mlp([1,1]) + activation('sigmoid') with "
            "loss mse; CE = mlp([1,1]) with binary_cross_entropy on the logit; "
            "steps_to_half_error: first step with |y - a| <= 0.5 |y - a0|",
            "digits": f"mlp({SIZES}, relu, he init), plain SGD batch {BATCH}, best lr by "
            "final validation accuracy (mean over seeds); MSE targets one-hot; "
            "seed s: fit(seed=s)'s initial parameters and batches",
            "backprop": "manual",
            "machine": "2 CPU cores shared with other jobs (seconds on a loaded machine)",
            **cfg,
        },
        "headline": headline(per_start, summary),
        "published": PUBLISHED,
        "saturation": per_start,
        "digits": {"learning_rates": lrs, **summary},
        "timing": {"saturation": sat_timing, "digits": digits_timing},
        "seconds": total.seconds,
    }
    print_tables(cfg, per_start, summary)
    plot(args, cfg, per_start, summary)
    _common.write_json(args, results)
    print(f"{results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
