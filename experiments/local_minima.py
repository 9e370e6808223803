"""Local minima and plateaus: how often does backprop fail to fit XOR and spirals?

``python experiments/local_minima.py [--quick] [--out DIR]``

The classic observation (Rumelhart, Hinton & Williams 1986): a 2-2-1 sigmoid
net trained on the four XOR patterns sometimes gets stuck, two patterns right
and two with output 0.5, the loss parked at ln(2)/2 for cross-entropy. Wider
nets almost never do. We train every (width, seed) pair from its own random
initialization with full-batch gradient descent and count the fraction that
reaches zero training error (100% training accuracy):

* **XOR**: the four points (±1, ±1), class 1 when the signs differ; a
  ``2-H-1`` sigmoid net (Xavier init), binary cross-entropy on the output
  logit, plain gradient descent (learning rate 1, every step on all four
  points), H in 1, 2, 3, 4, 8, 16, 128 seeds each.
* **Spirals**: ``jaxbp.data.load("spirals", n=200, noise=0)``'s 144 training
  points (two interleaved arms); a ``2-H-1`` tanh net, Adam (0.01,
  full batch), H in 4..64, 64 seeds each.

**One ``jaxbp.train.sweep`` per group of widths.** The widths of a group are
trained in one sweep over (width, seed) (XOR: one group; spirals: 4-16 and
32-64, so the narrow nets do not pay for 64 units). The model is
built at the group's largest width H_max, and a width-H net is that model
with hidden units H..H_max-1 switched off: their incoming and outgoing
weights and biases start at zero and their gradient is masked to zero (a
``GradientTransformation`` before the optimizer, the mask passed to the sweep
as each run's ``hyperparams``), so they stay zero and the
network computes exactly what a width-H net computes. The live weights are
``fit(seed=s)``'s draws for the H_max net, rescaled to the width-H Xavier
variance 2/(fan_in + fan_out), so each run is distributed as a freshly
initialized width-H net (and widths of a group with the same seed share
their random numbers). Gradients are jaxbp's hand-written backward pass
(``backprop="manual"``). ``--quick``: XOR only, widths 1, 2, 16, 64 seeds,
2,000 steps.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

import jaxbp
from jaxbp import data, optim
from jaxbp.train import init_params, sweep

LOSS = "binary_cross_entropy"
XOR_X = np.array([[-1, -1], [1, 1], [-1, 1], [1, -1]], np.float32)
XOR_Y = np.array([0, 0, 1, 1], np.int32)  # 1 when the coordinates' signs differ

FULL = {
    "xor": {
        "groups": [[1, 2, 3, 4, 8, 16]],
        "seeds": 128,
        "steps": 5000,
        "record_every": 50,
    },
    "spirals": {
        "groups": [[4, 6, 8, 12, 16], [32, 64]],
        "seeds": 64,
        "steps": 3000,
        "record_every": 100,
    },
}
# Quick: XOR only (spirals' data generation and a second compile would double it).
QUICK = {
    "xor": {"widths": [1, 2, 16], "seeds": 64, "steps": 2000, "record_every": 100},
}
SETUP = {
    "xor": {"activation": "sigmoid", "optimizer": "sgd", "learning_rate": 1.0},
    "spirals": {"activation": "tanh", "optimizer": "adam", "learning_rate": 0.01},
}


@functools.cache
def problem(name: str):
    """(x, y) training points of a dataset."""
    if name == "xor":
        return XOR_X, XOR_Y
    split = data.load("spirals", n=200, noise=0.0, seed=0).train
    return split.x, split.y


def width_masks(model, width: int, max_width: int):
    """(mask, scale): trees like the params. ``mask`` is 1 on the parameters of a
    width-``width`` net embedded in the ``max_width`` model, 0 elsewhere;
    ``scale`` turns the max-width Xavier draws into width-``width`` ones."""
    params = jax.eval_shape(model.init, jax.random.key(0))
    masks, scales = [], []
    units = np.arange(max_width) < width
    for p in params:
        if not p:  # activation layers: no parameters
            masks.append(p)
            scales.append(p)
            continue
        n_in, n_out = p["w"].shape
        live_in = units if n_in == max_width else np.ones(n_in, bool)
        live_out = units if n_out == max_width else np.ones(n_out, bool)
        fan_in = width if n_in == max_width else n_in
        fan_out = width if n_out == max_width else n_out
        rescale = math.sqrt((n_in + n_out) / (fan_in + fan_out))  # Xavier
        w_mask = np.outer(live_in, live_out).astype(np.float32)
        masks.append({"w": w_mask, "b": live_out.astype(np.float32)})
        scales.append({"w": np.float32(rescale), "b": np.float32(1.0)})
    return tuple(masks), tuple(scales)


def mask_gradients(mask) -> optim.GradientTransformation:
    """u = g ⊙ mask: switched-off units get no gradient (so they stay at 0)."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g, m: g * m, updates, mask), state

    return optim.GradientTransformation(optim.init_empty_state, update)


def masked_optimizer(name: str, learning_rate: float):
    """``optimizer(h)`` for the sweep: the optimizer after ``h["mask"]``'s
    gradient mask (each run's own width)."""
    make_opt = {"sgd": optim.sgd, "adam": optim.adam}[name]

    def optimizer(h):
        return optim.chain(mask_gradients(h["mask"]), make_opt(learning_rate))

    return optimizer


def stacked(trees, repeat: int):
    """Trees stacked on a leading axis, each repeated ``repeat`` times."""
    return jax.tree.map(lambda *a: jnp.repeat(jnp.stack(a), repeat, axis=0), *trees)


def masked_and_rescaled(param, mask, scale):
    """``param ⊙ mask × scale``, ``scale`` one number per run."""
    return param * mask * scale.reshape(scale.shape + (1,) * (param.ndim - 1))


def train_group(name: str, widths, cfg: dict):
    """Train every (width, seed) of one group in one ``jaxbp.train.sweep``, the
    model built at the group's largest width (width-major runs). Seed ``s``
    draws ``fit(seed=s)``'s initial parameters at the largest width, masked
    and rescaled to the run's width. Full batch: one shared schedule; the
    validation set is the training set. Returns loss and training accuracy,
    each (widths, seeds, records), the live parameter counts and the time."""
    setup = SETUP[name]
    seeds, steps, every = cfg["seeds"], cfg["steps"], cfg["record_every"]
    model = jaxbp.mlp([2, max(widths), 1], setup["activation"], init="xavier")
    points = problem(name)
    pairs = [width_masks(model, w, max(widths)) for w in widths]
    masks = stacked([m for m, _ in pairs], seeds)
    scales = stacked([s for _, s in pairs], seeds)
    params, state = init_params(model, list(range(seeds)) * len(widths))
    params = jax.tree.map(masked_and_rescaled, params, masks, scales)
    with _common.Timer() as timer:
        runs = sweep(
            model,
            points,
            points,
            loss=LOSS,
            optimizer=masked_optimizer(setup["optimizer"], setup["learning_rate"]),
            hyperparams={"mask": masks},
            params=params,
            state=state,
            seeds=0,
            batch_size=None,
            epochs=steps,
            eval_every=every,
        )
        loss, acc = jax.device_get((runs.val_loss, runs.val_accuracy))
    grid = (len(widths), seeds, -1)
    n_params = [int(sum(m.sum() for m in jax.tree.leaves(mask))) for mask, _ in pairs]
    return loss.reshape(grid), acc.reshape(grid), n_params, timer


def run(name: str, cfg: dict) -> dict:
    """All groups of widths of a dataset; success fractions etc."""
    setup = SETUP[name]
    seeds, steps, every = cfg["seeds"], cfg["steps"], cfg["record_every"]
    groups = cfg.get("groups") or [cfg["widths"]]
    widths = [w for group in groups for w in group]
    n_train = len(problem(name)[1])
    parts = [train_group(name, group, cfg) for group in groups]
    loss = np.concatenate([p[0] for p in parts])  # (widths, seeds, records)
    acc = np.concatenate([p[1] for p in parts])
    n_params = [n for p in parts for n in p[2]]
    sweep_seconds = sum(p[3].seconds for p in parts)
    record_steps = [every * (i + 1) for i in range(steps // every)]
    solved = acc == 1.0
    checkpoints = sorted({s for s in (steps // 5, steps // 2, steps) if s >= every})
    success_at = {
        str(s): solved[:, :, record_steps.index(s)].mean(axis=1).tolist()
        for s in checkpoints
        if s in record_steps
    }
    final_loss = loss[:, :, -1]
    failed = ~solved[:, :, -1]
    return {
        "widths": widths,
        "seeds": seeds,
        "steps": steps,
        "setup": {
            **setup,
            "model": f"2-H-1 {setup['activation']} MLP (Xavier init)",
            "loss": LOSS,
            "batch": "full",
            "n_train": n_train,
            "backprop": "manual",
        },
        "n_params": n_params,
        "success_fraction": solved[:, :, -1].mean(axis=1).tolist(),
        "success_fraction_at_step": success_at,
        "final_train_accuracy_median": np.median(acc[:, :, -1], axis=1).tolist(),
        "final_loss_median": np.median(final_loss, axis=1).tolist(),
        "failed_runs_final_loss_median": [
            float(np.median(final_loss[i][failed[i]])) if failed[i].any() else None
            for i in range(len(widths))
        ],
        "record_steps": record_steps,
        "groups": groups,
        "sweep_seconds": sweep_seconds,
        "machine": "2 CPU cores shared with other jobs (loaded)",
        "_curves": loss,  # not written: for the figure
        "_solved": solved[:, :, -1],
    }


def plot(args, results):
    plt = _common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, marker in (("xor", "o"), ("spirals", "s")):
        if name not in results:
            continue
        r = results[name]
        ax1.plot(
            r["widths"],
            r["success_fraction"],
            marker=marker,
            label=f"{name} ({r['seeds']} seeds, {r['steps']} steps)",
        )
    ax1.set_xscale("log", base=2)
    ticks = sorted({w for r in results.values() for w in r["widths"]})
    ax1.set_xticks(ticks, [str(w) for w in ticks])
    ax1.minorticks_off()
    ax1.set_xlabel("hidden width H (2-H-1 net)")
    ax1.set_ylabel("fraction of seeds reaching 100% train accuracy")
    ax1.set_ylim(-0.03, 1.05)
    ax1.set_title("Success of gradient descent vs width")
    ax1.legend(loc="center right", fontsize=8)
    ax1.grid(alpha=0.3)

    xor = results["xor"]
    if 2 in xor["widths"]:
        i = xor["widths"].index(2)
        curves, solved = xor["_curves"][i], xor["_solved"][i]
        steps = xor["record_steps"]
        shown = range(min(64, len(solved)))
        for j in shown:
            ax2.plot(
                steps,
                curves[j],
                color="tab:red" if not solved[j] else "0.6",
                lw=0.8,
                alpha=0.8,
            )
        ax2.axhline(math.log(2) / 2, color="k", ls="--", lw=1, label="ln(2)/2")
        ax2.plot([], [], color="0.6", label="solved")
        ax2.plot([], [], color="tab:red", label="stuck (2 of 4 wrong)")
        ax2.set_yscale("log")
        ax2.set_xlabel("gradient-descent step")
        ax2.set_ylabel("training loss (cross-entropy)")
        ax2.set_title(f"XOR 2-2-1: training loss, {len(shown)} seeds")
        ax2.legend(loc="lower left")
        ax2.grid(alpha=0.3)
    fig.tight_layout()
    path = _common.figure_path(args)
    _common.save_figure(fig, path)
    plt.close(fig)
    return path


def headline_of(results) -> dict:
    """Narrowest and widest success per dataset; whether the claim holds."""
    headline = {
        "claim": "the success fraction grows with width (narrowest < widest; "
        "widest ~1.0 for XOR)"
    }
    holds = True
    for name, r in results.items():
        narrow, wide = r["success_fraction"][0], r["success_fraction"][-1]
        headline[f"{name}_narrowest"] = {"width": r["widths"][0], "success": narrow}
        headline[f"{name}_widest"] = {"width": r["widths"][-1], "success": wide}
        holds = holds and narrow < wide
    headline["holds"] = bool(holds and results["xor"]["success_fraction"][-1] >= 0.95)
    return headline


def main(argv=None) -> dict:
    args = _common.parse_args(
        "local_minima",
        "Fraction of seeds reaching zero training error vs hidden width.",
        argv,
    )
    config = QUICK if args.quick else FULL
    with _common.Timer() as total:
        runs = {name: run(name, cfg) for name, cfg in config.items()}
        plot(args, runs)
    results = {
        name: {k: v for k, v in r.items() if not k.startswith("_")}
        for name, r in runs.items()
    }
    results["headline"] = headline_of(results)
    results["published"] = {
        "rumelhart_hinton_williams_1986": "Learning internal representations by "
        "error propagation (PDP vol. 1, ch. 8): XOR nets trained by backprop "
        "occasionally get stuck in a 'local minimum' instead of a solution; "
        "no failure rate for the 2-2-1 net is quoted here.",
        "hamey_1998": "L. Hamey, 'XOR has no local minima: a case study in neural "
        "network error surface analysis', Neural Networks 11(4), 1998: the 2-2-1 "
        "XOR error surface has no strict local minima; stuck runs sit on "
        "plateaus/saddle regions (minima only at infinite weights).",
        "sprinkhuizen_kuyper_boers_1999": "'A local minimum for the 2-3-1 XOR "
        "network', IEEE Trans. Neural Networks 10(4), 1999: with three hidden "
        "units there is a region of true local minima with nonzero error.",
        "stuck_loss_ln2_over_2": math.log(2) / 2,
    }
    results["seconds"] = total.seconds
    _common.write_json(args, results)
    for name in runs:
        r = results[name]
        rows = [
            [w, p, f"{s:.3f}", f"{a:.3f}", lf]
            for w, p, s, a, lf in zip(
                r["widths"],
                r["n_params"],
                r["success_fraction"],
                r["final_train_accuracy_median"],
                r["final_loss_median"],
            )
        ]
        _common.print_table(
            ["width", "params", "success", "median acc", "median loss"],
            rows,
            title=f"{name}: {r['seeds']} seeds, {r['steps']} steps (sweep "
            f"{r['sweep_seconds']:.1f} s)",
        )
    print(f"total {total.seconds:.1f} s")
    return results


if __name__ == "__main__":
    main()
