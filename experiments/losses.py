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
All starts and both losses are one compiled program (vmapped over starts).

**2. Digits.** The same MLP (64-64-10, ReLU, He init, same initial
parameters and mini-batches) trained with plain SGD (batch 32) under
softmax cross-entropy, MSE on the 10 linear outputs against one-hot targets,
MSE on 10 sigmoid outputs, and the multiclass (Weston-Watkins) hinge loss;
each at the learning rate (of a small grid) with the best validation
accuracy; test accuracy (argmax of the outputs) per epoch. One compiled
program, vmapped over seeds and learning rates.
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
from jaxbp.layers import activation
from jaxbp.train import TrainState, make_step, train_keys

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
    """The model's parameter tree with weight ``w`` and bias ``b`` (arrays (k,))."""
    params = [{"w": w.reshape(-1, 1, 1), "b": b.reshape(-1, 1)}]
    params += [()] * (len(model.layers) - 1)
    return tuple(params)


def saturation(cfg):
    """Both losses from every start: output, loss and |grad| per step."""
    mse_model, ce_model = neuron_models()
    z0 = np.asarray(cfg["z0"], np.float32)
    starts = {
        "w": np.concatenate([z0 / 2, [0.6, 2.0]]).astype(np.float32),
        "b": np.concatenate([z0 / 2, [0.9, 2.0]]).astype(np.float32),
        "y": np.concatenate([np.ones_like(z0), [0.0, 0.0]]).astype(np.float32),
    }
    x = jnp.ones((1, 1), jnp.float32)
    runs = {
        "mse": (mse_model, "mse"),
        "cross_entropy": (ce_model, "binary_cross_entropy"),
    }

    def train(model, loss, params, y):
        target = jnp.reshape(y, (1, 1))
        state = tuple(() for _ in model.layers)

        def step(p, _):
            value, grads = jaxbp.loss_and_grad(
                model, p, x, target, loss=loss, state=state, backprop="manual"
            )
            out = jax.nn.sigmoid(p[0]["w"][0, 0] * x[0, 0] + p[0]["b"][0])
            gnorm = jnp.sqrt(grads[0]["w"][0, 0] ** 2 + grads[0]["b"][0] ** 2)
            p = jax.tree.map(lambda q, g: q - SAT_LR * g, p, grads)
            return p, (out, value, gnorm)

        _, (out, value, gnorm) = jax.lax.scan(step, params, None, cfg["sat_steps"])
        return out, value, gnorm  # before each update

    def program(w, b, y):
        result = {}
        for name, (model, loss) in runs.items():
            params = neuron_params(model, w, b)
            result[name] = jax.vmap(
                lambda p, yy, model=model, loss=loss: train(model, loss, p, yy)
            )(params, y)
        return result

    t0 = time.perf_counter()
    compiled = jax.jit(program).lower(starts["w"], starts["b"], starts["y"]).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.device_get(compiled(starts["w"], starts["b"], starts["y"]))
    run_seconds = time.perf_counter() - t0

    # Curves are kept at ~200 log-spaced step counts (0, 1, 2, ..., S - 1).
    total = cfg["sat_steps"]
    kept = np.unique(np.round(np.logspace(0, np.log10(total), 200)).astype(int)) - 1
    kept = np.unique(np.concatenate([[0], kept[kept < total]]))
    per_start = []
    for k in range(len(starts["y"])):
        y = float(starts["y"][k])
        entry = {
            "z0": float(starts["w"][k] + starts["b"][k]),
            "w0": float(starts["w"][k]),
            "b0": float(starts["b"][k]),
            "target": y,
            "nielsen": k >= len(z0),
        }
        for name in runs:
            a, value, gnorm = (np.asarray(v[k]) for v in out[name])
            error = np.abs(y - a)
            half = np.flatnonzero(error <= 0.5 * error[0])
            entry[name] = {
                "initial_output": float(a[0]),
                "initial_error": float(error[0]),
                "initial_grad_norm": float(gnorm[0]),
                "steps_to_half_error": int(half[0]) if half.size else None,
                "final_output": float(a[-1]),
                "final_loss": float(value[-1]),
                "curve_steps": kept,  # updates done
                "error_curve": error[kept],
            }
        sp = float(
            entry["mse"]["initial_output"] * (1 - entry["mse"]["initial_output"])
        )
        entry["initial_grad_ratio_mse_over_ce"] = (
            entry["mse"]["initial_grad_norm"]
            / entry["cross_entropy"]["initial_grad_norm"]
        )
        entry["sigmoid_prime_z0"] = sp  # what the ratio should be: σ'(z0)
        per_start.append(entry)
    timing = {"compile_seconds": compile_seconds, "run_seconds": run_seconds}
    return per_start, timing


# ------------------------------------------------------------------ digits


def digits(cfg):
    """Four losses, same net, same init and batches; best lr by val accuracy."""
    ds = data.load("digits")
    net = jaxbp.mlp(SIZES, activation="relu")
    models = {
        "cross_entropy": (net, "cross_entropy"),
        "mse": (net, "mse"),
        "mse_sigmoid": (
            jaxbp.sequential(*net.layers, activation("sigmoid"), in_shape=(SIZES[0],)),
            "mse",
        ),
        "hinge": (net, "hinge"),
    }
    runs = [
        net.init_with_state(train_keys(jax.random.key(s))[0])
        for s in range(cfg["seeds"])
    ]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[p for p, _ in runs])
    state = runs[0][1]
    onehot = np.eye(SIZES[-1], dtype=np.float32)
    n = ds.train.x.shape[0]
    index = np.stack(
        [
            _common.batch_indices(s, n, BATCH, cfg["epochs"]).reshape(
                cfg["epochs"], n // BATCH, BATCH
            )
            for s in range(cfg["seeds"])
        ]
    )
    lrs = np.asarray(cfg["lrs"], np.float32)
    xv, yv = jnp.asarray(ds.val.x), jnp.asarray(ds.val.y)
    xs, ys = jnp.asarray(ds.test.x), jnp.asarray(ds.test.y)

    def run(name, params0, index, lr):
        model, loss = models[name]
        model_state = state + ((),) * (len(model.layers) - len(net.layers))
        p0 = tuple(params0) + ((),) * (len(model.layers) - len(net.layers))
        labels = onehot[ds.train.y] if loss == "mse" else ds.train.y
        x, t, _, _ = bp.prepare(model, None, ds.train.x, labels, loss, model_state)
        tx = optim.sgd(lr)
        step = make_step(model, loss, tx, backprop="manual")

        def accuracy(p, xx, yy):
            out = model.apply(p, xx, state=model_state)
            return jnp.mean(jnp.argmax(out, axis=-1) == yy)

        def epoch(carry, idx):
            def body(c, i):
                return step(c, jnp.take(x, i, axis=0), jnp.take(t, i, axis=0), None)

            carry, step_losses = jax.lax.scan(body, carry, idx)
            p = carry.params
            return carry, (
                jnp.mean(step_losses),
                accuracy(p, xv, yv),
                accuracy(p, xs, ys),
            )

        start = TrainState(p0, model_state, tx.init(p0))
        _, (train_loss, val_acc, test_acc) = jax.lax.scan(epoch, start, index)
        return {
            "train_loss": train_loss,
            "val_accuracy": val_acc,
            "test_accuracy": test_acc,
        }

    def program(params, index, lrs):
        out = {}
        for name in models:
            one = jax.vmap(
                lambda p, i, lr, name=name: run(name, p, i, lr), (None, None, 0)
            )
            out[name] = jax.vmap(one, (0, 0, None))(params, index, lrs)
        return out  # name -> {metric: (seeds, lrs, epochs)}

    t0 = time.perf_counter()
    compiled = jax.jit(program).lower(params, index, lrs).compile()
    compile_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.device_get(compiled(params, index, lrs))
    run_seconds = time.perf_counter() - t0

    summary = {}
    for name in models:
        m = {k: np.asarray(v) for k, v in out[name].items()}
        final_val = m["val_accuracy"][:, :, -1].mean(axis=0)  # (lrs,)
        finite = np.isfinite(m["train_loss"]).all(axis=(0, 2))
        best = int(np.argmax(np.where(finite, final_val, -1.0)))
        test = m["test_accuracy"][:, best, -1]
        summary[name] = {
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
    timing = {"compile_seconds": compile_seconds, "run_seconds": run_seconds}
    return lrs, summary, timing


# ------------------------------------------------------------------ output


def plot(args, cfg, per_start, summary):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 5.6))
    ax = axes[0]
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

    ax = axes[1]
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

    ax = axes[2]
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
    fig.suptitle("Losses: MSE vs cross-entropy vs hinge", fontsize=11)
    fig.tight_layout()
    path = _common.figure_path(args)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv=argv)
    started = time.perf_counter()
    cfg = config(args.quick)
    per_start, sat_timing = saturation(cfg)
    lrs, summary, digits_timing = digits(cfg)

    def slower(e):  # MSE steps / CE steps (inf when MSE never got there)
        m, c = (
            e["mse"]["steps_to_half_error"],
            e["cross_entropy"]["steps_to_half_error"],
        )
        if c is None:
            return None
        return float("inf") if m is None else m / max(c, 1)

    saturated = [e for e in per_start if not e["nielsen"]]
    headline = {
        "saturation_lr": SAT_LR,
        "steps_to_half_error": {
            e["z0"]: {
                "mse": e["mse"]["steps_to_half_error"],
                "cross_entropy": e["cross_entropy"]["steps_to_half_error"],
            }
            for e in saturated
        },
        "mse_over_ce_steps": {e["z0"]: slower(e) for e in saturated},
        "ce_faster_at_every_z0": all(
            e["cross_entropy"]["steps_to_half_error"] is not None
            and (
                e["mse"]["steps_to_half_error"] is None
                or e["cross_entropy"]["steps_to_half_error"]
                < e["mse"]["steps_to_half_error"]
            )
            for e in saturated
        ),
        "digits_test_accuracy": {
            k: s["test_accuracy_mean"] for k, s in summary.items()
        },
    }
    results = {
        "setup": {
            "saturation": "one sigmoid neuron, x = 1, plain GD, lr "
            f"{SAT_LR} for both losses; MSE = mlp([1,1]) + activation('sigmoid') with "
            "loss mse; CE = mlp([1,1]) with binary_cross_entropy on the logit; "
            "steps_to_half_error: first step with |y - a| <= 0.5 |y - a0|",
            "digits": f"mlp({SIZES}, relu, he init), plain SGD batch {BATCH}, best lr by "
            "final validation accuracy (mean over seeds); MSE targets one-hot",
            "backprop": "manual",
            **cfg,
        },
        "headline": headline,
        "published": PUBLISHED,
        "saturation": per_start,
        "digits": {"learning_rates": lrs, **summary},
        "timing": {"saturation": sat_timing, "digits": digits_timing},
    }
    _common.print_table(
        ["z0", "a0", "MSE steps", "CE steps", "MSE/CE", "grad ratio", "σ'(z0)"],
        [
            [
                e["z0"] if not e["nielsen"] else f"{e['z0']:g} (Nielsen, y=0)",
                e["mse"]["initial_output"],
                e["mse"]["steps_to_half_error"] or f">{cfg['sat_steps']}",
                e["cross_entropy"]["steps_to_half_error"] or f">{cfg['sat_steps']}",
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
    plot(args, cfg, per_start, summary)
    results["seconds"] = time.perf_counter() - started
    _common.write_json(args, results)
    print(f"{results['seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
