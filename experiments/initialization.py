"""Initialization: signal and gradient variance across depth, and a 30-layer ReLU net.

``python experiments/initialization.py [--quick] [--out DIR]``

1. **Variance per layer** (Glorot & Bengio 2010). MLPs of 10 hidden layers of
   256 (tanh and ReLU) on a batch of 512 digits (128 with --quick), softmax
   cross-entropy, at initialization, with weights N(0, 1), N(0, 0.01²),
   "standard" N(0, 1/(3 n_in)) (the variance of Glorot & Bengio's standard
   U(−1/√n, 1/√n)), Xavier N(0, 2/(n_in + n_out)) and He N(0, 2/n_in); biases 0.
   ``jaxbp.diagnostics.gradient_flow`` (hand-written backward pass) gives for
   each hidden layer l the variance of the activations h_l, and the mean
   squares of the backpropagated gradient δ_l = ∂L/∂z_l and of ∂L/∂W_l.
2. **30 ReLU layers** (He et al. 2015, Fig. 3: a 30-layer ReLU net with Xavier
   init does not learn, with He init it converges). 30 hidden layers on the
   digits, no batch norm, SGD with momentum 0.9, same learning rate and
   steps for both inits, several seeds. Both inits and all seeds are one
   ``jaxbp.train.sweep`` (each seed's batches those of ``fit(seed=s)``).

Every init is drawn the same way, so that they differ only in scale: per seed
one set of standard normals Z_l (``fit(seed=s)``'s initial parameters,
``jaxbp.train.init_params``, of a net built with ``initializers.normal(1)``)
scaled per layer, W_l = s_l Z_l with s_l the init's standard deviation for that
layer's fans (``initializers.fans``): exactly N(0, s_l²), and the inits are
compared on the same random draws.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import jax
import jax.numpy as jnp
import numpy as np
from _common import (
    Timer,
    figure_path,
    parse_args,
    print_table,
    pyplot,
    write_json,
)
from matplotlib.ticker import MaxNLocator

import jaxbp
from jaxbp import data, diagnostics, initializers, losses, optim
from jaxbp.train import init_params, sweep

NAME = "initialization"

#: init name -> std of W for a weight of fans (n_in, n_out)
INITS = {
    "N(0,1)": lambda n_in, n_out: 1.0,
    "N(0,0.01²)": lambda n_in, n_out: 0.01,
    "standard 1/(3n)": lambda n_in, n_out: math.sqrt(1 / (3 * n_in)),
    "xavier": lambda n_in, n_out: math.sqrt(2 / (n_in + n_out)),
    "he": lambda n_in, n_out: math.sqrt(2 / n_in),
}
VAR_DEPTH, VAR_WIDTH, VAR_BATCH = 10, 256, 512
LR, MOMENTUM, BATCH = 0.003, 0.9, 64
DEEP = 30

PUBLISHED = {
    "glorot_bengio_2010": {
        "source": "X. Glorot, Y. Bengio, Understanding the difficulty of training "
        "deep feedforward neural networks, AISTATS 2010, Sec. 4.2-4.3, Figs. 6-7",
        "finding": "with the standard init U(-1/sqrt(n), 1/sqrt(n)) and tanh, the "
        "back-propagated gradients shrink going down towards the input; with the "
        "normalized (Xavier) init activation and gradient variances stay about "
        "the same across layers (qualitative; no number reported)",
    },
    "he_2015": {
        "source": "K. He, X. Zhang, S. Ren, J. Sun, Delving Deep into Rectifiers, "
        "ICCV 2015, Sec. 2.2 and Fig. 3",
        "finding": "a 30-layer ReLU net (no batch norm) with Xavier init does not "
        "learn ('completely stalls'), with He init it converges; with Xavier the "
        "signal's variance is halved by each ReLU layer (qualitative)",
    },
}


def net(activation, depth, width):
    """``depth`` hidden layers of ``width``, weights N(0, 1) (rescaled per init)."""
    return jaxbp.mlp(
        [64] + [width] * depth + [10], activation, init=initializers.normal(1.0)
    )


def scales(model, init):
    """Per layer the std that ``init`` gives that layer's weight (1 elsewhere)."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    out = []
    for p in shapes:
        if isinstance(p, dict) and "w" in p:
            out.append(INITS[init](*initializers.fans(p["w"].shape)))
        else:
            out.append(1.0)
    return np.asarray(out, np.float32)


def scaled(params, layer_scales):
    """``params`` (standard normal weights) with each W_l scaled by s_l."""
    return tuple(
        {**p, "w": p["w"] * layer_scales[i]} if isinstance(p, dict) and "w" in p else p
        for i, p in enumerate(params)
    )


def seed_params(model, seeds):
    """``init_params(model, seeds)``: ``fit(seed=s)``'s standard normal draws,
    stacked over seeds, and the model state."""
    return init_params(model, list(seeds))


def variance_experiment(seeds, x, y):
    """Per hidden layer Var(h_l), E[δ_l²], E[(∂L/∂W_l)²] for every activation ×
    init × seed; vmapped over inits and seeds, one program."""
    inits = list(INITS)
    out = {}
    for act in ("tanh", "relu"):
        model = net(act, VAR_DEPTH, VAR_WIDTH)
        params, state = seed_params(model, seeds)
        table = jnp.asarray(np.stack([scales(model, i) for i in inits]))
        one = functools.partial(_layer_variances, model, state, x, y, act)
        run = jax.vmap(jax.vmap(one, (None, 0)), (0, None))
        out[act] = jax.device_get(
            _common.compile_fast(run, table, params)(table, params)
        )
    return out


def _layer_variances(model, state, x, y, act, layer_scales, params):
    """One net's per-hidden-layer variances (``diagnostics.gradient_flow``)."""
    params = scaled(params, layer_scales)
    r = diagnostics.gradient_flow(
        model, params, x, y, loss="cross_entropy", state=state
    )
    dense = [i for i, layer in enumerate(model.layers) if layer.name == "dense"]
    hidden = dense[:-1]
    return {
        "act_var": jnp.stack([r[i + 1].std ** 2 for i in hidden]),
        "pre_var": jnp.stack([r[i].std ** 2 for i in hidden]),
        "delta_ms": jnp.stack(
            [r[i].delta_norm ** 2 / (x.shape[0] * VAR_WIDTH) for i in hidden]
        ),
        "dW_ms": jnp.stack(
            [r[i].weight_grad_norm ** 2 / params[i]["w"].size for i in hidden]
        ),
        "saturated": (
            jnp.stack([r[i + 1].saturated for i in hidden])
            if act == "tanh"
            else jnp.zeros(len(hidden))
        ),
    }


def deep_relu_experiment(seeds, ds, width, epochs):
    """Train the DEEP-layer ReLU net with Xavier and with He init (same draws,
    same SGD, each seed's ``fit(seed=s)`` batches) in one ``sweep`` over
    inits × seeds; per-epoch training loss, final loss and accuracy on the
    training and validation sets, and the activation variance per layer at
    init. Returns ``{init: {name: (seeds, ...)}}``."""
    model = net("relu", DEEP, width)
    inits = ("xavier", "he")
    draws, state = seed_params(model, seeds)
    starts = [scaled(draws, scales(model, i)) for i in inits]
    params = jax.tree.map(lambda *a: jnp.concatenate(a), *starts)
    runs = sweep(
        model,
        ds.train,
        ds.val,
        optimizer=optim.sgd(LR, momentum=MOMENTUM),
        params=params,
        state=state,
        seeds=list(seeds) * len(inits),
        batch_size=BATCH,
        epochs=epochs,
    )
    final = jax.device_get(_final_metrics(model, runs.params, state, ds.train))
    act_var = jax.device_get(_init_act_var(model, params, state, ds.train.x[:256]))
    loss = np.asarray(runs.train_loss, np.float64)
    out = {
        "train_loss": loss.reshape(loss.shape[0], epochs, -1).mean(axis=-1),
        "final_loss": final[0],
        "final_accuracy": final[1],
        "val_loss": np.asarray(runs.val_loss[:, -1]),
        "val_accuracy": np.asarray(runs.val_accuracy[:, -1]),
        "act_var_init": act_var,
    }
    n = len(seeds)
    return {
        init: {k: np.asarray(v)[i * n : (i + 1) * n] for k, v in out.items()}
        for i, init in enumerate(inits)
    }


@functools.partial(jax.jit, static_argnums=0)
def _final_metrics(model, params, state, train):
    """Each run's training loss and accuracy on the whole training set."""
    x, y = train
    ce = losses.get("cross_entropy")
    t = jax.nn.one_hot(y, 10, dtype=x.dtype)

    def one(p):
        out = model.apply(p, x, state=state)
        return ce.value(out, t), jnp.mean(jnp.argmax(out, -1) == y)

    return jax.vmap(one)(params)


@functools.partial(jax.jit, static_argnums=0)
def _init_act_var(model, params, state, x):
    """Each run's Var(h_l) of every hidden ReLU layer at init, on ``x``."""
    dense = [i for i, layer in enumerate(model.layers) if layer.name == "dense"]
    acts = [i + 1 for i in dense[:-1]]  # the activation layers h_1 .. h_DEEP

    def one(p):
        _, caches, _ = model.forward(p, state, x, train=True)
        return jnp.stack([jnp.var(caches[i][1]) for i in acts])  # cache (z, h)

    return jax.vmap(one)(params)


def _gmean(a, axis=0):
    a = np.asarray(a, np.float64)
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(a), axis=axis))


def plot(results, path):
    plt = pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.2))
    for row, act in enumerate(("tanh", "relu")):
        for col, (key, label) in enumerate(
            (
                ("act_var", "Var(h_l), activations"),
                ("delta_ms", "E[δ_l²], backpropagated gradient ∂L/∂z_l"),
            )
        ):
            _plot_variances(axes[row, col], results["variance"][act], act, key, label)
    _plot_deep_loss(axes[0, 2], results["deep_relu"])
    _plot_deep_variance(axes[1, 2], results["deep_relu"])
    fig.tight_layout()
    _common.save_figure(fig, path)
    plt.close(fig)


def _plot_variances(ax, v, act, key, label):
    """One per-layer quantity at init, every init."""
    colors = ("tab:red", "tab:purple", "tab:gray", "tab:blue", "tab:green")
    layers = np.arange(1, VAR_DEPTH + 1)
    for init, color in zip(INITS, colors):
        ax.plot(layers, v[init][key], marker="o", ms=3, color=color, label=init)
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer l (1 = nearest the input)")
    ax.set_ylabel(label, fontsize=9)
    ax.set_title(f"{act}, {VAR_DEPTH}×{VAR_WIDTH}, at init", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)


def _plot_deep_loss(ax, d):
    """The deep ReLU net's training loss per epoch, every seed and the median."""
    for init, color in (("xavier", "tab:blue"), ("he", "tab:green")):
        loss = np.asarray(d[init]["train_loss_per_seed"])
        epochs = np.arange(1, loss.shape[1] + 1)
        for s in range(loss.shape[0]):
            ax.plot(epochs, loss[s], color=color, alpha=0.35, lw=1)
        ax.plot(
            epochs,
            np.median(loss, axis=0),
            color=color,
            lw=2.2,
            label=f"{init}: final {d[init]['final_loss_median']:.3g}",
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (epoch mean; thin: each seed)")
    ax.set_title(
        f"{DEEP}-layer ReLU net, width {d['width']}: SGD lr {LR}, momentum {MOMENTUM}",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _plot_deep_variance(ax, d):
    """The deep ReLU net's Var(h_l) per layer at init."""
    for init, color in (("xavier", "tab:blue"), ("he", "tab:green")):
        ax.plot(
            np.arange(1, DEEP + 1),
            d[init]["act_var_init"],
            color=color,
            marker=".",
            label=f"{init}: Var(h_l)",
        )
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer l")
    ax.set_ylabel("Var(h_l) at init (256 training images)")
    ax.set_title(f"{DEEP}-layer ReLU net at init", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")


def summarize_variance(r, act) -> dict:
    """Geometric means over seeds of one (activation, init) and its ratios."""
    entry = {k: _gmean(r[k]) for k in ("act_var", "pre_var", "delta_ms", "dW_ms")}
    if act == "tanh":
        entry["saturated_fraction"] = np.mean(r["saturated"], axis=0)
    act_var, delta = entry["act_var"], entry["delta_ms"]
    entry["act_var_last_over_first"] = float(act_var[-1] / act_var[0])
    entry["act_var_per_layer_factor"] = float(
        (act_var[-1] / act_var[0]) ** (1 / (VAR_DEPTH - 1))
    )
    entry["delta_ms_first_over_last"] = float(delta[0] / delta[-1])
    entry["act_var_max_over_min"] = float(np.max(act_var) / np.min(act_var))
    return entry


def summarize_deep(r) -> dict:
    """Medians over seeds of one init's deep ReLU runs."""
    v = _gmean(r["act_var_init"])
    return {
        "train_loss_per_seed": np.asarray(r["train_loss"], np.float64),
        "final_loss_per_seed": np.asarray(r["final_loss"], np.float64),
        "final_loss_median": float(np.median(r["final_loss"])),
        "final_accuracy_median": float(np.median(r["final_accuracy"])),
        "val_accuracy_median": float(np.median(r["val_accuracy"])),
        "act_var_init": v,
        "act_var_last_over_first": float(v[-1] / v[0]),
        "act_var_max_over_min": float(np.max(v) / np.min(v)),
    }


def headline(results) -> dict:
    deep = results["deep_relu"]
    he_v = results["variance"]["relu"]["he"]
    xa_v = results["variance"]["relu"]["xavier"]
    return {
        "claim": f"the {DEEP}-layer ReLU net reaches a much lower training loss with "
        "He than with Xavier after the same steps; He keeps ReLU activation variance "
        "within a factor ~2-3 across depth while Xavier's shrinks by ~2^-depth",
        "deep_he_final_loss": deep["he"]["final_loss_median"],
        "deep_xavier_final_loss": deep["xavier"]["final_loss_median"],
        "deep_he_act_var_max_over_min": deep["he"]["act_var_max_over_min"],
        "deep_xavier_act_var_last_over_first": deep["xavier"][
            "act_var_last_over_first"
        ],
        "deep_2_pow_minus_depth": 2.0 ** -(DEEP - 1),
        "relu10_he_act_var_max_over_min": he_v["act_var_max_over_min"],
        "relu10_xavier_act_var_per_layer_factor": xa_v["act_var_per_layer_factor"],
        "holds": deep["he"]["final_loss_median"] < deep["xavier"]["final_loss_median"]
        and he_v["act_var_max_over_min"] < 3,
    }


def report(results, n_seeds):
    """The printed tables."""
    rows = [
        [
            act,
            init,
            float(e["act_var"][0]),
            float(e["act_var"][-1]),
            e["act_var_per_layer_factor"],
            float(e["delta_ms"][0]),
            float(e["delta_ms"][-1]),
            e["delta_ms_first_over_last"],
        ]
        for act, by_init in results["variance"].items()
        for init, e in by_init.items()
    ]
    print_table(
        [
            "act",
            "init",
            "Var(h_1)",
            f"Var(h_{VAR_DEPTH})",
            "factor/layer",
            "E[δ_1²]",
            f"E[δ_{VAR_DEPTH}²]",
            "δ² first/last",
        ],
        rows,
        title=f"{VAR_DEPTH} hidden layers of {VAR_WIDTH} at init ({n_seeds} seeds)",
    )
    deep = results["deep_relu"]
    print_table(
        ["init", "final train loss", "train acc", "val acc", "Var(h_30)/Var(h_1)"],
        [
            [
                init,
                deep[init]["final_loss_median"],
                deep[init]["final_accuracy_median"],
                deep[init]["val_accuracy_median"],
                deep[init]["act_var_last_over_first"],
            ]
            for init in ("xavier", "he")
        ],
        title=f"{DEEP}-layer ReLU, width {deep['width']}, {deep['epochs']} epochs "
        f"(median of {n_seeds} seeds)",
    )
    seconds = results["seconds"]
    print(
        f"headline holds: {results['headline']['holds']} "
        f"({seconds['variance']:.1f} s + {seconds['deep_relu']:.1f} s, on a machine "
        "shared with other jobs)"
    )


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    quick = args.quick
    n_seeds = 2 if quick else 4
    width = 64 if quick else 128
    epochs = 3 if quick else 20
    var_batch = 128 if quick else VAR_BATCH
    ds = data.load("digits")
    x, y = ds.train.x, ds.train.y
    seeds = range(n_seeds)
    with Timer() as t_var:
        var = variance_experiment(seeds, x[:var_batch], y[:var_batch])
    with Timer() as t_deep:
        deep = deep_relu_experiment(seeds, ds, width, epochs)
    results = {
        "setup": {
            "variance": f"{VAR_DEPTH} hidden layers of {VAR_WIDTH}, digits batch of "
            f"{var_batch}, cross-entropy, biases 0, {n_seeds} seeds (geometric means)",
            "deep_relu": f"{DEEP} hidden ReLU layers of {width}, digits "
            f"({len(x)} train / {len(ds.val.x)} val), no batch norm, SGD lr {LR} "
            f"momentum {MOMENTUM}, batch {BATCH}, {epochs} epochs, {n_seeds} seeds "
            "(fit(seed=s)'s draws and batches, jaxbp.train.sweep)",
            "backprop": "manual",
        },
        "published": PUBLISHED,
        "variance": {
            act: {
                init: summarize_variance(
                    jax.tree.map(lambda v, i=i: np.asarray(v)[i], var[act]), act
                )
                for i, init in enumerate(INITS)
            }
            for act in ("tanh", "relu")
        },
        "deep_relu": {"width": width, "epochs": epochs, "learning_rate": LR}
        | {init: summarize_deep(deep[init]) for init in ("xavier", "he")},
    }
    results["headline"] = headline(results)
    results["seconds"] = {"variance": t_var.seconds, "deep_relu": t_deep.seconds}
    write_json(args, results)
    plot(results, figure_path(args))
    report(results, n_seeds)
    return results


if __name__ == "__main__":
    main()
