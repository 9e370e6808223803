"""Character-level language models: min-char-rnn reproduced, then RNN vs LSTM vs GRU.

``python experiments/char_rnn.py [--quick] [--out DIR]``

**(a) min-char-rnn** (Karpathy, 2015, ``_min_char_rnn``): a vanilla tanh RNN
with 100 hidden units, one-hot inputs (as his; no embedding), chunks of 25
characters taken through the training text in order with the hidden state
carried from chunk to chunk (truncated backpropagation through time; reset at
the start of every pass, as his ``p = 0``), his loss (the sum of the 25
cross-entropies), every gradient element clipped to [−5, 5]
(``optim.clip(5.0)``) and his Adagrad (lr 0.1, ``mem`` from 0, ``1e−8`` inside
the square root: ``optim.adagrad(0.1, initial_accumulator_value=0.0,
eps=1e-8)``; jaxbp's defaults are optax's, 0.1 and 1e−7). The step goes
through ``jaxbp.train.run_steps`` with the carry (TrainState, h); the
recurrence is ``jaxbp.layers.rnn_forward``/``rnn_backward`` (from the carried
h0, see ``_recurrent_probe``), the head ``dense_forward``/``dense_backward``.
Recorded: every chunk's loss and his smoothed loss (×0.999 + 0.001 × loss,
started at 25 ln V as his is), the first chunk's actual loss against 25 ln V
(the loss of a uniform prediction: his 0.01-scale weights give nearly uniform
outputs), the loss per character of the trained model on the validation text
(run in order with the state carried), the step's hand-written gradient
against ``jax.grad`` of his equations from a nonzero h0, and a sample.

**(b) RNN vs LSTM vs GRU** at about the same parameter count (the LSTM's
hidden size fixes the count; the RNN's and GRU's are chosen to match it),
embedding → recurrent layer → dense over the vocabulary, cross-entropy at
every position, the same optimizer (Adam, global-norm clipping), step budget,
batches of random windows of the training text and validation
windows: ``jaxbp.recipes.language_model`` trained by
``jaxbp.train.fit_language_model`` (``_lm_training``), from each of
``seeds`` seeds (initial parameters and windows). Recorded: the
validation-loss curve of each run (nats per character), the final and best
values per seed and their means over the seeds.
"""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import _lm_experiment as lm_experiment
import _lm_training as lm
import _min_char_rnn as mcr
import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.data import text
from jaxbp.train import TrainState, run_steps

NAME = "char_rnn"
SAMPLE_LENGTH = 300


def config(quick: bool) -> dict:
    if quick:
        return {
            "min_char_rnn_steps": 2000,
            "lstm_hidden": 32,
            "embed_dim": 16,
            "steps": 60,
            "batch_size": 16,
            "block_size": 32,
            "eval_interval": 30,
            "eval_batches": 2,
            "learning_rate": 3e-3,
            "clip_norm": 1.0,
            "seeds": 1,
        }
    return {
        "min_char_rnn_steps": 100_000,
        "lstm_hidden": 128,
        "embed_dim": 64,
        "steps": 3000,
        "batch_size": 32,
        "block_size": 64,
        "eval_interval": 250,
        "eval_batches": 10,
        "learning_rate": 3e-3,
        "clip_norm": 1.0,
        "seeds": 3,
    }


def karpathy_loss(params, tokens, h0):
    """His equations written directly in jnp (the ``jax.grad`` reference)."""
    vocab_size = params["out"]["b"].shape[0]
    rnn, out = params["rnn"], params["out"]

    def step(h, inputs):
        x_t, y_t = inputs
        h = jnp.tanh(
            jax.nn.one_hot(x_t, vocab_size) @ rnn["w_x"] + h @ rnn["w_h"] + rnn["b"]
        )
        logp = jax.nn.log_softmax(h @ out["w"] + out["b"])
        return h, -jnp.take_along_axis(logp, y_t[:, None], axis=1).sum()

    xs, ys = tokens[:, :-1].T, tokens[:, 1:].T
    return jax.lax.scan(step, h0, (xs, ys))[1].sum()


def gradient_crosscheck(params, tokens, h0) -> dict:
    """The step's hand-written loss and gradient against his equations + jax.grad."""
    value, grads, _ = mcr.loss_and_grads(params, tokens, h0)
    ref_value, ref = jax.value_and_grad(karpathy_loss)(params, tokens, h0)
    return {
        "max_rel_grad": _common.relative_error(grads, ref),
        "loss_rel": abs(float(value) - float(ref_value)) / abs(float(ref_value)),
    }


def validation_loss(params, val_tokens) -> float:
    """Nats per character over the validation text in his chunks, in order,
    the state carried from chunk to chunk."""
    rows, _ = mcr.chunks(np.asarray(val_tokens))

    def step(h, row):
        value, _, h = mcr.loss_and_grads(params, row[None], h)
        return h, value

    h0 = jnp.zeros((1, params["rnn"]["w_h"].shape[0]))
    values = jax.jit(lambda r: jax.lax.scan(step, h0, r)[1])(jnp.asarray(rows))
    return float(jnp.sum(values)) / (rows.shape[0] * mcr.SEQ_LENGTH)


def run_min_char_rnn(cfg, corpus) -> dict:
    """Part (a): his training run through ``run_steps``."""
    rows, resets = mcr.chunks(np.asarray(corpus.train))
    vocab_size, steps = corpus.vocab_size, cfg["min_char_rnn_steps"]
    params = mcr.init_params(jax.random.key(0), vocab_size)
    tx = mcr.optimizer()
    carry = (TrainState(params, (), tx.init(params)), jnp.zeros((1, mcr.HIDDEN)))
    index = jnp.asarray(np.arange(steps) % len(rows))[:, None]
    keys = jax.random.split(jax.random.key(0), steps)  # unused: no random layers
    run = jax.jit(functools.partial(run_steps, mcr.make_step(tx)))
    with _common.Timer() as timer:
        (train_state, h), step_losses = run(
            carry, jnp.asarray(rows), jnp.asarray(resets), index, keys
        )
        step_losses = np.asarray(jax.device_get(step_losses), np.float64)
    start = mcr.SEQ_LENGTH * math.log(vocab_size)
    smooth = mcr.smoothed(step_losses, start)
    stride = max(1, steps // 1000)  # the JSON keeps ~1,000 points of the curve
    trained = train_state.params
    next_token = rows[(steps - 1) % len(rows), -1]
    drawn = mcr.sample(trained, h, int(next_token), SAMPLE_LENGTH, jax.random.key(1))
    return {
        "vocab_size": vocab_size,
        "parameters": sum(int(leaf.size) for leaf in jax.tree.leaves(params)),
        "chunks_per_pass": len(rows),
        "passes": steps / len(rows),
        "steps": steps,
        "expected_start_25_ln_V": start,
        "first_chunk_loss": float(step_losses[0]),
        "first_chunk_loss_rel_diff": abs(step_losses[0] - start) / start,
        "first_chunk_losses": step_losses[:10],
        "smoothed_loss_stride": stride,
        "smoothed_loss": smooth[::stride],
        "final_smoothed_loss": float(smooth[-1]),
        "val_nats_per_char": validation_loss(trained, corpus.val),
        "gradient_check": gradient_crosscheck(trained, jnp.asarray(rows[:1]), h),
        "sample": text.decode(drawn, corpus.vocab),
        "train_seconds": timer.seconds,
    }


def compare_models(cfg, corpus) -> dict:
    """Part (b): RNN, LSTM and GRU at about equal parameter count, each
    trained from every seed of ``cfg["seeds"]`` (its initial parameters, its
    training and validation windows)."""
    vocab_size, dim = corpus.vocab_size, cfg["embed_dim"]
    target = lm.parameter_count("lstm", vocab_size, cfg["lstm_hidden"], dim)
    out = {"target_parameters": target}
    for kind in lm.KINDS:
        hidden = lm.hidden_for(kind, target, vocab_size, dim)
        model = lm.language_model(kind, vocab_size, hidden, dim, cfg["block_size"])
        histories = []
        with _common.Timer() as timer:
            for seed in range(cfg["seeds"]):
                histories.append(lm_experiment.train(model, corpus, cfg, seed)[2])
        finals = [h[-1]["val_loss"] for h in histories]
        bests = [min(r["val_loss"] for r in h) for h in histories]
        out[kind] = {
            "hidden": hidden,
            "parameters": lm.parameter_count(kind, vocab_size, hidden, dim),
            "history": histories[0],
            "histories": histories,
            "final_val_loss_per_seed": finals,
            "final_val_loss": float(np.mean(finals)),
            "best_val_loss": float(np.mean(bests)),
            "final_val_bits_per_char": float(np.mean(finals)) / math.log(2),
            "seconds": timer.seconds,
        }
    return out


def plot_min_char_rnn(ax, a):
    smooth = np.asarray(a["smoothed_loss"])
    steps = np.arange(len(smooth)) * a["smoothed_loss_stride"]
    ax.plot(steps, smooth, color="C0", label="smoothed loss")
    start = a["expected_start_25_ln_V"]
    ax.axhline(start, color="k", ls="--", lw=1, label=f"25 ln V = {start:.1f}")
    per_pass = a["chunks_per_pass"]
    for p in range(1, int(a["passes"]) + 1):
        ax.axvline(p * per_pass, color="0.7", lw=0.8)
    ax.set_xlabel("step (25 characters each; grey: a pass through the text)")
    ax.set_ylabel("loss per chunk (sum of 25 cross-entropies)")
    ax.set_title(f"min-char-rnn: hidden 100, Adagrad 0.1, V = {a['vocab_size']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def plot_models(ax, b, a, cfg):
    low = np.inf
    for i, kind in enumerate(lm.KINDS):
        r = b[kind]
        steps = [h["step"] for h in r["history"]]
        val = np.asarray([[h["val_loss"] for h in run] for run in r["histories"]])
        label = (
            f"{kind} H={r['hidden']} ({r['parameters']:,} params): "
            f"{r['final_val_loss']:.3f}"
        )
        ax.plot(steps, val.mean(0), "-o", ms=3, color=f"C{i}", label=label)
        ax.fill_between(steps, val.min(0), val.max(0), color=f"C{i}", alpha=0.2)
        low = min(low, val.min())
    ax.axhline(
        a["val_nats_per_char"],
        color="0.3",
        ls=":",
        lw=1,
        label=f"min-char-rnn (a), in order: {a['val_nats_per_char']:.3f}",
    )
    top = (
        max(
            a["val_nats_per_char"],
            *(r["history"][1]["val_loss"] for r in (b[k] for k in lm.KINDS)),
        )
        + 0.1
    )
    ax.set_ylim(low - 0.05, top)
    ax.set_xlabel(f"optimizer step (batch {cfg['batch_size']} × {cfg['block_size']})")
    ax.set_ylabel("validation loss (nats per character)")
    ax.set_title(
        f"equal parameter count, {cfg['steps']} steps of Adam, "
        f"{cfg['seeds']} seed(s)\n(step 0, ≈ ln V = "
        f"{math.log(a['vocab_size']):.2f}, is off the top)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def plot(results, cfg, path):
    plt = _common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    plot_min_char_rnn(ax1, results["min_char_rnn"])
    plot_models(ax2, results["models"], results["min_char_rnn"], cfg)
    fig.suptitle("Character-level language models on CPython's pydoc text", fontsize=11)
    fig.tight_layout()
    _common.save_figure(fig, path)
    plt.close(fig)


def headline_of(results) -> dict:
    a, b = results["min_char_rnn"], results["models"]
    return {
        "first_chunk_loss": a["first_chunk_loss"],
        "expected_start_25_ln_V": a["expected_start_25_ln_V"],
        "start_matches_25_ln_V": bool(a["first_chunk_loss_rel_diff"] < 1e-3),
        "min_char_rnn_final_smoothed_loss": a["final_smoothed_loss"],
        "min_char_rnn_val_nats_per_char": a["val_nats_per_char"],
        "final_val_loss": {k: b[k]["final_val_loss"] for k in lm.KINDS},
        "best_model": min(lm.KINDS, key=lambda k: b[k]["final_val_loss"]),
        "ln_V": math.log(a["vocab_size"]),
    }


def main(argv=None) -> dict:
    args = _common.parse_args(NAME, __doc__.splitlines()[0], argv)
    cfg = config(args.quick)
    corpus = text.text_corpus(block_size=cfg["block_size"])
    with _common.Timer() as timer:
        results = {"min_char_rnn": run_min_char_rnn(cfg, corpus)}
        results["models"] = compare_models(cfg, corpus)
    out = lm_experiment.write_outputs(
        args,
        cfg,
        results,
        about={"corpus": "pydoc_data (jaxbp.data.text default)"},
        headline=headline_of(results),
        seconds=timer.seconds,
        plot=plot,
    )
    a = results["min_char_rnn"]
    print(
        f"min-char-rnn: first loss {a['first_chunk_loss']:.3f} vs 25 ln V "
        f"{a['expected_start_25_ln_V']:.3f}; smoothed {a['final_smoothed_loss']:.2f} "
        f"after {a['steps']} steps; val {a['val_nats_per_char']:.3f} nats/char"
    )
    rows = [
        [
            k,
            r["hidden"],
            r["parameters"],
            r["final_val_loss"],
            r["best_val_loss"],
            r["seconds"],
        ]
        for k, r in ((k, results["models"][k]) for k in lm.KINDS)
    ]
    _common.print_table(
        ["model", "hidden", "params", "val loss", "best", "s"],
        rows,
        f"{NAME} ({timer.seconds:.1f} s)",
    )
    print(a["sample"][:200])
    return out


if __name__ == "__main__":
    main()
