"""Vanishing gradients through time: ‖∂L/∂h_t‖ against the distance from the loss.

``python experiments/vanishing_through_time.py [--quick] [--out DIR]``

The seeds' claim (Bengio et al. 1994; Hochreiter & Schmidhuber 1997): in a
tanh RNN the gradient reaching a state T − t steps before the loss shrinks
geometrically with that distance, and the LSTM's (and GRU's) additive state
path lets it travel further.

Models: character-level language models on the default corpus
(``jaxbp.data.text``, CPython's pydoc topics): embedding → one recurrent layer
(tanh RNN with jaxbp's Xavier init, LSTM or GRU with torch's init, the same
hidden size) → dense over the vocabulary (``jaxbp.recipes.language_model``),
from ``fit_language_model(seed=0)``'s initial parameters. Each is measured at
initialisation and after a short training (Adam with global-norm clipping on
random windows, cross-entropy at every position,
``jaxbp.train.fit_language_model``).

The measurement: ``windows`` validation windows of ``length`` characters, run
from the zero state; the loss L is the cross-entropy of the prediction at the
last position only (the character after the window), so every state h_t
with t < T reaches L only through the recurrence. ∂L/∂h_t comes from the
hand-written backward (``lstm_backward``, ``gru_backward``, ``rnn_backward``)
run one step at a time, so its reverse-time carries are exposed
(``_recurrent_probe.state_grads``); the same by ``jax.grad`` (a perturbation
added to each h_t) is the cross-check recorded as ``crosscheck_max_rel``.
The measurement runs in float64 (the trained float32 parameters cast): the
curves fall over many orders of magnitude, and in float32 the gradient through
a saturated unit (1 − h² with h ≈ ±1) keeps few correct digits.
Per window the norm ‖∂L_b/∂h_t‖ (per-example loss, not divided by the batch);
the curve is the geometric mean over the windows (the mean of the log norms),
with the 10–90% band. The rate: a least-squares line through
log‖∂L/∂h_t‖ against the distance d = T − t for d ≥ 1 (d = 0 is the output
layer's own gradient); ``factor_per_step`` = e^slope, ``r2`` its fit. For the
LSTM the cell state's ∂L/∂c_t is recorded too.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import _lm_experiment as lm_experiment
import _lm_training as lm
import _recurrent_probe as probe
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import losses
from jaxbp.data import text
from jaxbp.layers import dense_backward, dense_forward

NAME = "vanishing_through_time"


def config(quick: bool) -> dict:
    if quick:
        return {
            "hidden": 32,
            "embed_dim": 16,
            "block_size": 32,
            "batch_size": 16,
            "steps": 100,
            "eval_interval": 100,
            "eval_batches": 2,
            "learning_rate": 3e-3,
            "clip_norm": 1.0,
            "length": 40,
            "windows": 16,
        }
    return {
        "hidden": 128,
        "embed_dim": 32,
        "block_size": 64,
        "batch_size": 32,
        "steps": 2000,
        "eval_interval": 250,
        "eval_batches": 10,
        "learning_rate": 3e-3,
        "clip_norm": 1.0,
        "length": 80,
        "windows": 64,
    }


def last_position_loss(head, h_last, labels):
    """Σ_b CE of the prediction at the last position: (value, ∂L/∂h_T)."""
    ce = losses.get("cross_entropy")
    target = jax.nn.one_hot(labels, head["b"].shape[0])
    logits = dense_forward(head, h_last)
    scale = labels.shape[0]  # the per-example losses, summed
    _, dh = dense_backward(head, h_last, scale * ce.backward(logits, target))
    return scale * ce.value(logits, target), dh


def measure(kind, params, x_tokens, labels):
    """∂L/∂h_t (and ∂L/∂c_t for the LSTM) norms per window and the jax.grad
    cross-check, for the model ``params`` = (embedding, recurrent, head)."""
    table, rec, head = params[0]["table"], params[1], params[2]
    x = table[x_tokens]
    batch, hidden = x.shape[0], head["w"].shape[0]
    state0 = probe.zero_state(kind, batch, hidden, x.dtype)
    _, final, _ = probe.sequence_forward(kind, rec, x, state0)
    _, dh_last = last_position_loss(head, final[0], labels)
    dstate = (dh_last, jnp.zeros_like(dh_last)) if kind == "lstm" else (dh_last,)
    manual = probe.state_grads(kind, rec, x, state0, dstate)

    def loss_of_final(h_last):
        return last_position_loss(head, h_last, labels)[0]

    auto = probe.state_grads_autodiff(kind, rec, x, state0, loss_of_final)
    out = {
        "norms": jnp.linalg.norm(manual, axis=-1).T,  # (B, T)
        "crosscheck_max_rel": jnp.max(jnp.abs(manual - auto)) / jnp.max(jnp.abs(auto)),
        "crosscheck_per_step_max_rel": jnp.max(
            jnp.linalg.norm(manual - auto, axis=-1) / jnp.linalg.norm(auto, axis=-1)
        ),
    }
    if kind == "lstm":
        out["cell_norms"] = _cell_grad_norms(rec, x, state0, dstate)
    return out


def _cell_grad_norms(rec, x, state0, dstate):
    """‖∂L/∂c_t‖ per window (B, T), the LSTM's total cell-state gradient:
    the carry from c_{t+1} plus dh_t ⊙ o_t ⊙ (1 − tanh² c_t) through h_t."""
    before = probe.states_along("lstm", rec, x, state0)

    def step(ds, inputs):
        x_t, prev = inputs
        _, cache = probe.cell_forward("lstm", rec, x_t, prev)
        _, _, _, _, cs, gates = cache
        o, tau = jnp.split(gates[0], 4, axis=-1)[3], jnp.tanh(cs[0])
        total = ds[1] + ds[0] * o * (1 - tau * tau)
        return probe.cell_backward("lstm", rec, cache, ds), total

    xs = jnp.swapaxes(x, 0, 1)
    dcs = jax.lax.scan(step, dstate, (xs, before), reverse=True)[1]
    return jnp.linalg.norm(dcs, axis=-1).T


def summarize(norms) -> dict:
    """The curve against distance (geometric mean and 10–90% band over the
    windows) and the least-squares rate over d ≥ 1."""
    norms = np.asarray(norms, np.float64)[:, ::-1]  # (B, distance 0 … T−1)
    logs = np.log(norms)
    curve = np.exp(logs.mean(axis=0))
    distance = np.arange(norms.shape[1])
    d, y = distance[1:], logs.mean(axis=0)[1:]
    slope, intercept = np.polyfit(d, y, 1)
    residual = y - (slope * d + intercept)
    r2 = 1 - residual.var() / y.var() if y.var() > 0 else 1.0
    return {
        "distance": distance,
        "geometric_mean": curve,
        "p10": np.exp(np.percentile(logs, 10, axis=0)),
        "p90": np.exp(np.percentile(logs, 90, axis=0)),
        "factor_per_step": float(np.exp(slope)),
        "r2": float(r2),
        "last_over_first": float(curve[-1] / curve[1]),
    }


def in_float64(params):
    """The parameters in float64: the measurement follows gradients down to
    1e−30 of their size at the loss, below float32's rounding of saturated
    units (training stays in float32)."""
    return jax.tree.map(lambda a: a.astype(jnp.float64), params)


def run_kind(kind, cfg, corpus, batch):
    """Measurements at init and after training for one kind."""
    model = lm.language_model(
        kind, corpus.vocab_size, cfg["hidden"], cfg["embed_dim"], cfg["block_size"]
    )
    measure_jit = jax.jit(lambda p: measure(kind, in_float64(p), *batch))
    start, trained, history = lm_experiment.train(model, corpus, cfg)
    out = {"init": jax.device_get(measure_jit(start))}
    out["trained"] = jax.device_get(measure_jit(trained))
    out["history"] = history
    return out


def plot(results, cfg, path):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, when in zip(axes, ("init", "trained"), strict=True):
        for i, kind in enumerate(lm.KINDS):
            s = results[kind][when]
            label = f"{kind} (×{s['factor_per_step']:.3f}/step)"
            ax.plot(s["distance"], s["geometric_mean"], color=f"C{i}", label=label)
            ax.fill_between(
                s["distance"], s["p10"], s["p90"], color=f"C{i}", alpha=0.15
            )
        cell = results["lstm"][when].get("cell")
        if cell is not None:
            ax.plot(
                cell["distance"],
                cell["geometric_mean"],
                "--",
                color="C1",
                label=f"lstm ‖∂L/∂c_t‖ (×{cell['factor_per_step']:.3f}/step)",
            )
        ax.set_yscale("log")
        ax.set_xlabel("distance from the loss, T − t (steps)")
        title = (
            "at initialisation"
            if when == "init"
            else (f"after {cfg['steps']} training steps")
        )
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="lower left")
    axes[0].set_ylabel("‖∂L/∂h_t‖ (geometric mean, 10–90% band)")
    fig.suptitle(
        f"Gradient through time: char LM on pydoc text, hidden {cfg['hidden']}, "
        "loss on the last prediction",
        fontsize=10,
    )
    fig.tight_layout()
    _common.save_figure(fig, path)
    plt.close(fig)


def headline_of(results) -> dict:
    factor = {
        k: {w: results[k][w]["factor_per_step"] for w in ("init", "trained")}
        for k in lm.KINDS
    }
    rnn = factor["rnn"]
    return {
        "factor_per_step": factor,
        "rnn_r2": {w: results["rnn"][w]["r2"] for w in ("init", "trained")},
        "rnn_vanishes_geometrically": bool(rnn["init"] < 1 and rnn["trained"] < 1),
        "gated_slower_than_rnn": {
            w: [k for k in ("lstm", "gru") if factor[k][w] > rnn[w]]
            for w in ("init", "trained")
        },
        "crosscheck_max_rel": max(
            results[k][w]["crosscheck_max_rel"]
            for k in lm.KINDS
            for w in ("init", "trained")
        ),
        "final_val_loss": {k: results[k]["history"][-1]["val_loss"] for k in lm.KINDS},
    }


def summarize_measurement(m) -> dict:
    """``summarize`` of one measurement, with its jax.grad cross-check and,
    for the LSTM, the cell state's curve."""
    s = summarize(m["norms"])
    s["crosscheck_max_rel"] = float(m["crosscheck_max_rel"])
    s["crosscheck_per_step_max_rel"] = float(m["crosscheck_per_step_max_rel"])
    if "cell_norms" in m:
        s["cell"] = summarize(m["cell_norms"])
    return s


def print_summary(results, cfg, seconds) -> None:
    rows = [
        [
            k,
            w,
            *(results[k][w][c] for c in ("factor_per_step", "r2")),
            results[k][w]["last_over_first"],
            results[k][w]["crosscheck_max_rel"],
        ]
        for k in lm.KINDS
        for w in ("init", "trained")
    ]
    _common.print_table(
        ["model", "when", "factor/step", "r2", "last/first", "vs jax.grad"],
        rows,
        f"{NAME}: ‖∂L/∂h_t‖ over {cfg['length']} steps ({seconds:.1f} s)",
    )


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv)
    jax.config.update("jax_enable_x64", True)  # for the float64 measurement
    cfg = config(args.quick)
    corpus = text.text_corpus(block_size=cfg["length"])
    x, y = lm.validation_windows(corpus, 1, cfg["windows"], cfg["length"], seed=7)
    results = {}
    with _common.Timer() as timer:
        for kind in lm.KINDS:
            raw = run_kind(kind, cfg, corpus, (x, y[:, -1]))
            results[kind] = {"history": raw["history"]}
            for when in ("init", "trained"):
                results[kind][when] = summarize_measurement(raw[when])
    about = {
        "vocab_size": corpus.vocab_size,
        "corpus": "pydoc_data",
        "optimizer": "jaxbp.optim.adam + clip_by_global_norm",
        "loss_measured": "cross-entropy of the last position's prediction",
    }
    out = lm_experiment.write_outputs(
        args,
        cfg,
        results,
        about=about,
        headline=headline_of(results),
        seconds=timer.seconds,
        plot=plot,
    )
    print_summary(results, cfg, timer.seconds)
    return out


if __name__ == "__main__":
    main()
