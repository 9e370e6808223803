"""Exploding gradients: large weights in deep nets and in RNNs, and gradient clipping.

``python experiments/exploding_gradients.py [--quick] [--out DIR]``

1. **Depth.** MLPs of ``DEPTH`` hidden layers of 64 on the digits, weights
   W ~ N(0, σ_w²/n_in) (σ_w = 1 is LeCun's scale, √2 He's), tanh, ReLU and
   linear units, softmax cross-entropy, at initialization:
   ``jaxbp.diagnostics.gradient_flow`` gives, for every dense layer l, the
   backpropagated error ‖δ_l‖ = ‖∂L/∂z_l‖ and ‖∂L/∂W_l‖. The growth factor per
   layer is exp of minus the least-squares slope of log ‖δ_l‖ against l over
   the hidden layers (how much ‖δ‖ is multiplied by, per layer, going back
   towards the input). Mean-field theory predicts σ_w·sqrt(E φ'(z)²): σ_w/√2
   for ReLU, σ_w for linear units (printed beside the measurement).
2. **Time.** A vanilla tanh RNN (``jaxbp.layers.rnn``, 64 units, 8 inputs,
   inputs 0.1·N(0, 1)) over T steps, with the recurrent matrix W_h a random
   Gaussian matrix rescaled to spectral radius ρ: ‖∂L/∂x_t‖ (the error that
   reaches input step t from a loss on the last state h_T) against the number
   of steps back T − t, and the growth factor per step (same fit).
3. **Clipping.** The ReLU net with σ_w = 2√2 (twice He's scale) trained on the
   digits with SGD (momentum 0.9, learning rate ``LR``, batch 64), without
   and with ``optim.clip_by_global_norm(1.0)`` (``optim.chain``), over seeds
   (and, in the full run, learning rates), one ``jaxbp.train.sweep`` (each
   seed's ``fit(seed=s)`` start and batches); and the first steps one by one
   (``make_step`` + ``run_steps``, recording each step's gradient norm).

Everything is measured with the hand-written backward pass.
"""

from __future__ import annotations

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
from jaxbp import data, diagnostics, initializers, optim
from jaxbp import layers as L
from jaxbp.train import TrainState, init_params, make_step, run_steps, sweep

NAME = "exploding_gradients"
WIDTH = 64
RELU_2HE = 2 * math.sqrt(2)
# name: (activation, sigma_w)
DEPTH_SETUPS = {
    "tanh σw=1": ("tanh", 1.0),
    "tanh σw=2": ("tanh", 2.0),
    "tanh σw=3": ("tanh", 3.0),
    "relu σw=√2 (He)": ("relu", math.sqrt(2)),
    "relu σw=2√2 (2×He)": ("relu", RELU_2HE),
    "linear σw=1": ("identity", 1.0),
    "linear σw=2": ("identity", 2.0),
}
QUICK_DEPTH_SETUPS = ("tanh σw=1", "tanh σw=3", "relu σw=√2 (He)", "relu σw=2√2 (2×He)")
RNN_RADII = (0.5, 0.9, 1.0, 1.5, 2.0, 3.0)
RNN_HIDDEN, RNN_INPUTS, RNN_BATCH, RNN_INPUT_SCALE = 64, 8, 16, 0.1
CLIP_NORM = 1.0
LR = 0.01
MOMENTUM = 0.9
CLIP_DEPTH = 10
DEPTH_BATCH = 256


def deep_mlp(activation, sigma_w, depth, dtype=jnp.float32):
    """``depth`` hidden dense layers of WIDTH with W ~ N(0, σ_w²/n_in), biases 0."""
    layers, fan_in = [], 64
    for _ in range(depth):
        init = initializers.normal(sigma_w / math.sqrt(fan_in))
        layers += [L.dense(WIDTH, init=init), L.activation(activation)]
        fan_in = WIDTH
    layers.append(L.dense(10, init=initializers.normal(sigma_w / math.sqrt(fan_in))))
    return jaxbp.sequential(*layers, in_shape=(64,), dtype=dtype)


def growth_factor(norms):
    """exp(−slope) of the least-squares line through log(norms) against the
    index (layer or time step, increasing towards the loss); norms that
    underflowed to 0 (or are not finite) are left out."""
    norms = np.asarray(norms, np.float64)
    idx = np.arange(norms.size)
    ok = np.isfinite(norms) & (norms > 1e-35)
    if ok.sum() < 2:
        return float("nan")
    slope = np.polyfit(idx[ok], np.log(norms[ok]), 1)[0]
    return float(np.exp(-slope))


def depth_experiment(setups, depth, keys, x, y):
    """Per dense layer ‖δ_l‖ and ‖∂L/∂W_l‖ at init for every setup, vmapped over
    seeds, one compiled program."""

    def run(keys):
        out = {}
        for name in setups:
            act, sigma = DEPTH_SETUPS[name]
            model = deep_mlp(act, sigma, depth)
            dense = [i for i, layer in enumerate(model.layers) if layer.name == "dense"]

            def one(key, model=model, dense=dense):
                params, state = model.init_with_state(key)
                records = diagnostics.gradient_flow(
                    model, params, x, y, loss="cross_entropy", state=state
                )
                return {
                    "delta": jnp.stack([records[i].delta_norm for i in dense]),
                    "dW": jnp.stack([records[i].weight_grad_norm for i in dense]),
                    "act_std": jnp.stack([records[i + 1].std for i in dense[:-1]]),
                }

            out[name] = jax.vmap(one)(keys)
        return out

    return jax.device_get(_common.compile_fast(run, keys)(keys))


def rnn_params(seed, radius):
    """RNN parameters: W_x ~ N(0, 1/F); W_h a N(0, 1/H) matrix rescaled to
    spectral radius ``radius`` (numpy, so that ρ is exact)."""
    rng = np.random.default_rng(seed)
    w_h = rng.normal(size=(RNN_HIDDEN, RNN_HIDDEN)) / math.sqrt(RNN_HIDDEN)
    w_h *= radius / np.max(np.abs(np.linalg.eigvals(w_h)))
    w_x = rng.normal(size=(RNN_INPUTS, RNN_HIDDEN)) / math.sqrt(RNN_INPUTS)
    return {
        "w_x": w_x.astype(np.float32),
        "w_h": w_h.astype(np.float32),
        "b": np.zeros(RNN_HIDDEN, np.float32),
    }


def rnn_experiment(steps, n_seeds):
    """‖∂L/∂x_t‖ for every t and ‖∂L/∂W_h‖, for each spectral radius and seed,
    L = mean over the batch of v·h_T (v a fixed random unit vector per
    example): the layer's hand-written backpropagation through time."""
    layer = L.rnn(RNN_HIDDEN)
    params = [[rnn_params(s, r) for s in range(n_seeds)] for r in RNN_RADII]
    params = jax.tree.map(
        lambda *a: np.stack(a),
        *[jax.tree.map(lambda *b: np.stack(b), *row) for row in params],
    )
    rng = np.random.default_rng(1234)
    x = RNN_INPUT_SCALE * rng.normal(size=(RNN_BATCH, steps, RNN_INPUTS))
    v = rng.normal(size=(RNN_BATCH, RNN_HIDDEN))
    dy = (v / np.linalg.norm(v, axis=1, keepdims=True) / RNN_BATCH).astype(np.float32)
    x = x.astype(np.float32)

    def one(p):
        _, cache, _ = layer.forward(p, (), x)
        grads, dx = layer.backward(p, cache, dy)
        return {
            "dx_t": jnp.sqrt(jnp.sum(dx * dx, axis=(0, 2))),  # (T,)
            "dW_h": jnp.linalg.norm(grads["w_h"]),
        }

    run = jax.vmap(jax.vmap(one))
    return jax.device_get(_common.compile_fast(run, params)(params))


def clip_model():
    return deep_mlp("relu", RELU_2HE, CLIP_DEPTH)


def _optimizer(h):
    """clip_by_global_norm(h["clip"]) then SGD with momentum; clip = inf is no
    clipping (the norm is always below it), so one program runs both."""
    return optim.chain(
        optim.clip_by_global_norm(h["clip"]), optim.sgd(h["lr"], momentum=MOMENTUM)
    )


def clip_experiment(ds, seeds, lrs, epochs):
    """Training runs over seeds × learning rates × {no clip, clip}, one
    ``jaxbp.train.sweep``: ``chain(clip_by_global_norm(c), sgd)`` with (lr, c)
    per-run hyperparameters, each seed's ``fit(seed=s)`` initial parameters
    and batches of 64. Returns the epoch-mean training loss ``(seeds, lrs,
    [no clip, clip], epochs)``."""
    model = clip_model()
    n = len(seeds)
    grid = [(s, lr, c) for s in seeds for lr in lrs for c in (np.inf, CLIP_NORM)]
    run_seeds = [s for s, _, _ in grid]
    params, state = init_params(model, run_seeds)
    hyper = {
        "lr": jnp.asarray([lr for _, lr, _ in grid], jnp.float32),
        "clip": jnp.asarray([c for _, _, c in grid], jnp.float32),
    }
    runs = sweep(
        model,
        ds.train,
        optimizer=_optimizer,
        hyperparams=hyper,
        params=params,
        state=state,
        seeds=run_seeds,
        batch_size=64,
        epochs=epochs,
    )
    loss = np.asarray(runs.train_loss, np.float64)  # (runs, steps)
    return loss.reshape(n, len(lrs), 2, epochs, -1).mean(axis=-1)


def first_steps(x, y, seed, n_steps):
    """The first ``n_steps`` SGD steps one by one (batches of 64 in data
    order), without and with clipping: the loss before each step and the
    gradient's global norm. ``make_step`` + ``run_steps`` rather than
    ``sweep``: the gradient norm is of the step's own batch, which a probe
    (called on the parameters alone) does not see."""
    model = clip_model()
    xb, tb = jnp.asarray(x[: n_steps * 64]), jax.nn.one_hot(y[: n_steps * 64], 10)
    indices = jnp.arange(n_steps * 64, dtype=jnp.int32).reshape(n_steps, 64)
    keys = jax.random.split(jax.random.key(seed), n_steps)
    params, state = init_params(model, [seed])
    params = jax.tree.map(lambda a: a[0], params)

    def one(clip):
        tx = _optimizer({"lr": jnp.float32(LR), "clip": clip})
        step = make_step(model, optimizer=tx)

        def step_and_norm(ts, xb, tb, key):
            _, grads = jaxbp.loss_and_grad(
                model, ts.params, xb, tb, loss="cross_entropy", state=ts.state
            )
            ts, value = step(ts, xb, tb, key)
            return ts, (value, optim.global_norm(grads))

        start = TrainState(params, state, tx.init(params))
        return run_steps(step_and_norm, start, xb, tb, indices, keys)[1]

    clips = jnp.asarray([jnp.inf, CLIP_NORM], jnp.float32)
    values, norms = jax.device_get(_common.compile_fast(jax.vmap(one), clips)(clips))
    return np.asarray(values, np.float64), np.asarray(norms, np.float64)


def plot(results, path):
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.2))
    _plot_depth(axes[0, 0], results)
    _plot_rnn(axes[0, 1], results)
    _plot_first_steps(axes[1, 0], results)
    _plot_clipping(axes[1, 1], results, plt)
    fig.tight_layout()
    _common.save_figure(fig, path)
    plt.close(fig)


def _plot_depth(ax, results):
    """‖δ_l‖ per layer at init, every depth setup; linear nets dashed, without
    markers, so that the ReLU curves they lie on stay visible."""
    for name, r in results["depth"]["setups"].items():
        delta = np.asarray(r["delta_mean"])
        back = np.arange(delta.size)[::-1]  # layers below the output layer
        linear = r["activation"] == "identity"
        ax.plot(
            back,
            delta,
            marker=None if linear else ".",
            ls="--" if linear else "-",
            lw=2.0 if linear else 1.2,
            label=f"{name}: ×{r['growth_per_layer']:.2f}",
        )
    ax.set_yscale("log")
    ax.set_xlabel("dense layers below the output layer")
    ax.set_ylabel("‖δ_l‖ = ‖∂L/∂z_l‖ at init")
    ax.set_title(
        f"Depth: {results['depth']['depth']} hidden layers of {WIDTH}, W ~ N(0, σw²/n)",
        fontsize=10,
    )
    ax.legend(fontsize=7, title="growth per layer", title_fontsize=7)
    ax.grid(alpha=0.3, which="both")


def _plot_rnn(ax, results):
    """‖∂L/∂x_t‖ against steps back, every spectral radius."""
    for radius, r in results["rnn"]["radii"].items():
        dx = np.asarray(r["dx_t_mean"])
        back = np.arange(dx.size)[::-1]
        ax.plot(
            back,
            np.where(dx > 0, dx, np.nan),
            label=f"ρ = {radius}: ×{r['growth_per_step']:.3g}/step",
        )
    ax.set_yscale("log")
    ax.set_xlabel("time steps back from the last (T − t)")
    ax.set_ylabel("‖∂L/∂x_t‖")
    ax.set_title(
        f"Vanilla tanh RNN, T = {results['rnn']['steps']}: recurrent spectral radius ρ",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")


def _plot_first_steps(ax, results):
    """The loss of the first SGD steps, with and without clipping."""
    c = results["clipping"]
    values = np.asarray(c["first_steps"]["loss"], np.float64)
    steps = np.arange(1, values.shape[1] + 1)
    ax.set_yscale("log")
    for i, (label, color) in enumerate(
        (("no clipping", "tab:red"), (f"clip_by_global_norm({CLIP_NORM})", "tab:blue"))
    ):
        v = values[i]
        finite = np.isfinite(v)
        ax.plot(steps[finite], v[finite], marker="o", color=color, label=label)
        if not finite.all():
            first_bad = steps[~finite][0]
            ax.axvline(first_bad, color=color, ls=":", lw=1.2)
            ax.text(
                first_bad + 0.2,
                0.5,
                "loss NaN from here",
                color=color,
                fontsize=8,
                rotation=90,
                va="center",
                transform=ax.get_xaxis_transform(),
            )
    ax.set_xlabel("SGD step")
    ax.set_ylabel("training loss (batch, before the step)")
    ax.set_title(
        f"ReLU net, {CLIP_DEPTH} layers, σw = 2√2: the first steps "
        f"(lr {LR}, momentum {MOMENTUM})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3, which="both")


def _plot_clipping(ax, results, plt):
    """Epoch-mean training loss, every learning rate, with and without clipping."""
    c = results["clipping"]
    loss = np.asarray(c["train_loss"], np.float64)  # (seeds, lrs, 2, epochs)
    epochs = np.arange(1, loss.shape[-1] + 1)
    lrs = c["learning_rates"]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(lrs)))
    diverged = []
    for j, lr in enumerate(lrs):
        for k, ls in ((0, ":"), (1, "-")):
            runs = loss[:, j, k, :]
            # a diverged run counts as +inf: the median is finite only while
            # most seeds are
            med = np.median(np.where(np.isfinite(runs), runs, np.inf), axis=0)
            if not np.isfinite(med).any():
                diverged.append(f"{lr:g}")
                continue
            label = f"lr {lr:g}, " + ("no clipping" if k == 0 else "clipped")
            ax.plot(
                epochs,
                np.where(np.isfinite(med), med, np.nan),
                ls=ls,
                color=colors[j],
                marker="x" if k == 0 else ".",
                label=label,
            )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss (epoch mean, median over seeds)")
    ax.set_title(
        f"SGD (momentum {MOMENTUM}) with and without clip_by_global_norm({CLIP_NORM})",
        fontsize=10,
    )
    if diverged:
        ax.text(
            0.02,
            0.03,
            "no clipping, most seeds NaN at lr " + ", ".join(diverged),
            transform=ax.transAxes,
            fontsize=8,
            color="tab:red",
        )
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, which="both")


def summarize_depth(name, r) -> dict:
    """Geometric means over seeds and the growth per layer of one setup."""
    act, sigma = DEPTH_SETUPS[name]
    delta = np.exp(np.mean(np.log(np.asarray(r["delta"], np.float64)), axis=0))
    dw = np.exp(np.mean(np.log(np.asarray(r["dW"], np.float64)), axis=0))
    hidden = delta[:-1]  # the hidden layers (the output layer's δ is dL/dlogits)
    return {
        "activation": act,
        "sigma_w": sigma,
        "delta_mean": delta,  # geometric mean over seeds, layer 1 .. output
        "dW_mean": dw,
        "act_std_mean": np.mean(np.asarray(r["act_std"], np.float64), axis=0),
        "growth_per_layer": growth_factor(hidden),
        "growth_per_layer_per_seed": [
            growth_factor(np.asarray(s)[:-1]) for s in r["delta"]
        ],
        "first_over_last_hidden_delta": float(hidden[0] / hidden[-1]),
        "growth_per_layer_theory": {
            "relu": sigma / math.sqrt(2),
            "identity": sigma,
        }.get(act),
        "dW_first_over_last": float(dw[0] / dw[-1]),
    }


def summarize_rnn(radius, dx, dw_h) -> dict:
    """Geometric mean over seeds of ‖∂L/∂x_t‖ and the growth per step."""
    with np.errstate(divide="ignore"):
        mean = np.exp(np.mean(np.log(np.asarray(dx, np.float64)), axis=0))
    return {
        "spectral_radius": radius,
        "dx_t_mean": mean,  # geometric mean over seeds, t = 1 .. T
        "growth_per_step": growth_factor(mean),
        "first_over_last": float(mean[0] / mean[-1]),
        "dW_h_norm_mean": float(np.mean(dw_h)),
    }


def summarize_clipping(train_loss, lrs, fs_loss, fs_norm) -> dict:
    """Start and end of every run, divergences, and the headline lr's runs."""
    start, final = train_loss[..., 0], train_loss[..., -1]
    j = lrs.index(LR)
    return {
        "learning_rates": lrs,
        "train_loss": train_loss,  # (seeds, lrs, [no clip, clip], epochs)
        "first_epoch_loss": start,
        "final_loss": final,
        # per learning rate: [no clip, clip] runs whose loss became NaN/inf
        "diverged_runs": np.sum(~np.all(np.isfinite(train_loss), axis=-1), axis=0),
        "first_steps": {
            "loss": fs_loss,
            "grad_norm": fs_norm,
            "rows": ["no clipping", f"clip {CLIP_NORM}"],
        },
        "headline_lr": LR,
        "unclipped_final": final[:, j, 0],
        "unclipped_first_epoch": start[:, j, 0],
        "clipped_first_epoch": start[:, j, 1],
        "clipped_final": final[:, j, 1],
    }


def headline(results) -> dict:
    c = results["clipping"]
    unclipped = c["unclipped_final"]
    unclipped_diverged = bool(
        np.all(~np.isfinite(unclipped) | (unclipped > c["unclipped_first_epoch"]))
    )
    clipped = c["clipped_final"]
    clipped_ok = bool(
        np.all(np.isfinite(clipped) & (clipped < c["clipped_first_epoch"]))
    )
    growth = {k: v["growth_per_layer"] for k, v in results["depth"]["setups"].items()}
    return {
        "claim": "gradient norm grows exponentially with depth for weights above "
        "the critical scale; unclipped training diverges while clipped training "
        "reduces the loss",
        "growth_per_layer": growth,
        "rnn_growth_per_step": {
            k: v["growth_per_step"] for k, v in results["rnn"]["radii"].items()
        },
        "unclipped_diverged": unclipped_diverged,
        "clipped_reduces_loss": clipped_ok,
        "holds": unclipped_diverged
        and clipped_ok
        and growth["relu σw=2√2 (2×He)"] > 1.5
        and growth["tanh σw=3"] > 1.1,
    }


def setup(depth, steps, epochs, n_seeds, n_train) -> dict:
    """The JSON's description of the run."""
    return {
        "depth": f"{depth} hidden dense layers of {WIDTH}, digits batch of "
        f"{DEPTH_BATCH}, cross-entropy, W ~ N(0, sigma_w^2/n_in), biases 0",
        "rnn": f"tanh RNN, {RNN_HIDDEN} hidden, {RNN_INPUTS} inputs of "
        f"{RNN_INPUT_SCALE}*N(0,1), batch {RNN_BATCH}, {steps} steps, loss "
        "mean_b v_b.h_T; W_h Gaussian rescaled to spectral radius rho",
        "clipping": f"relu, {CLIP_DEPTH} hidden layers of {WIDTH}, sigma_w = "
        f"2*sqrt(2) (2x He), digits ({n_train} train), SGD momentum {MOMENTUM}, "
        f"batch 64, {epochs} epochs, clip_by_global_norm({CLIP_NORM}); each "
        "seed's fit(seed=s) initial parameters and batches (jaxbp.train.sweep)",
        "seeds": n_seeds,
        "backprop": "manual",
    }


def report(results, seconds):
    """The printed tables."""
    depth, rnn, c = results["depth"], results["rnn"], results["clipping"]
    rows = [
        [
            name,
            r["growth_per_layer"],
            "-"
            if r["growth_per_layer_theory"] is None
            else r["growth_per_layer_theory"],
            r["first_over_last_hidden_delta"],
            float(r["dW_mean"][0]),
            r["dW_first_over_last"],
        ]
        for name, r in depth["setups"].items()
    ]
    print_table(
        [
            "setup",
            "‖δ‖ growth/layer",
            "theory",
            "‖δ_1‖/‖δ_L‖",
            "‖dW_1‖",
            "‖dW_1‖/‖dW_L‖",
        ],
        rows,
        title=f"depth: {depth['depth']} hidden layers of {WIDTH} at init "
        f"({results['setup']['seeds']} seeds)",
    )
    print_table(
        ["spectral radius", "growth/step", "‖dx_1‖/‖dx_T‖", "‖dW_h‖"],
        [
            [
                r["spectral_radius"],
                r["growth_per_step"],
                r["first_over_last"],
                r["dW_h_norm_mean"],
            ]
            for r in rnn["radii"].values()
        ],
        title=f"tanh RNN over {rnn['steps']} steps",
    )
    report_clipping(c, results["setup"]["seeds"])
    fs_loss, fs_norm = c["first_steps"]["loss"], c["first_steps"]["grad_norm"]
    print(
        f"first steps, no clipping: loss {', '.join(f'{v:.3g}' for v in fs_loss[0])}; "
        f"gradient norms {', '.join(f'{v:.3g}' for v in fs_norm[0][:4])} ..."
    )
    print(
        f"headline holds: {results['headline']['holds']} ("
        + " + ".join(f"{v:.1f}" for v in seconds.values())
        + " s, on a machine shared with other jobs)"
    )


def report_clipping(c, n_seeds):
    """The clipping table: median over seeds, a diverged run counting as +inf."""

    def med(values):
        m = float(np.median(np.where(np.isfinite(values), values, np.inf)))
        return f"{m:.3g}" if math.isfinite(m) else "diverged"

    start, final, diverged = c["first_epoch_loss"], c["final_loss"], c["diverged_runs"]
    rows = [
        [lr]
        + [
            x
            for k in (0, 1)
            for x in (
                f"{med(start[:, j, k])} -> {med(final[:, j, k])}",
                f"{int(diverged[j][k])}/{n_seeds}",
            )
        ]
        for j, lr in enumerate(c["learning_rates"])
    ]
    print_table(
        [
            "lr",
            "no clip: epoch 1 -> last",
            "diverged",
            "clip: epoch 1 -> last",
            "diverged",
        ],
        rows,
        title=f"training the ReLU net, σw = 2√2, {c['train_loss'].shape[-1]} epochs "
        "(median over seeds, a diverged run counting as +inf)",
    )


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    quick = args.quick
    depth = 10 if quick else 30
    setups = QUICK_DEPTH_SETUPS if quick else tuple(DEPTH_SETUPS)
    n_seeds = 2 if quick else 5
    steps = 40 if quick else 100
    epochs = 3 if quick else 20
    lrs = [LR] if quick else [0.0001, 0.0003, 0.001, 0.003, LR, 0.03]
    ds = data.load("digits")
    x, y = ds.train.x[:DEPTH_BATCH], ds.train.y[:DEPTH_BATCH]
    keys = jax.random.split(jax.random.key(0), n_seeds)
    with Timer() as t_depth:
        d = depth_experiment(setups, depth, keys, x, y)
    with Timer() as t_rnn:
        rnn = rnn_experiment(steps, n_seeds)
    with Timer() as t_clip:
        train_loss = clip_experiment(ds, range(n_seeds), lrs, epochs)
        fs = first_steps(ds.train.x, ds.train.y, 0, 8 if quick else 15)
    results = {
        "setup": setup(depth, steps, epochs, n_seeds, len(ds.train.y)),
        "depth": {
            "depth": depth,
            "setups": {name: summarize_depth(name, d[name]) for name in setups},
        },
        "rnn": {
            "steps": steps,
            "radii": {
                str(r): summarize_rnn(r, rnn["dx_t"][i], rnn["dW_h"][i])
                for i, r in enumerate(RNN_RADII)
            },
        },
        "clipping": summarize_clipping(train_loss, lrs, *fs),
    }
    results["headline"] = headline(results)
    results["seconds"] = {
        "depth": t_depth.seconds,
        "rnn": t_rnn.seconds,
        "clipping": t_clip.seconds,
    }
    write_json(args, results)
    plot(results, figure_path(args))
    report(results, results["seconds"])
    return results


if __name__ == "__main__":
    main()
