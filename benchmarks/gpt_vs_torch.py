"""The GPT's train step: jaxbp (hand-written backward) against PyTorch, same model.

Both sides train the nanoGPT model of ``jaxbp train --model gpt``'s preset
(4 layers, 4 heads, width 128, context 64, batch 12, the default corpus's
vocabulary, tied head, no dropout) with the same step: cross-entropy over
every position, gradients clipped to global norm 1, AdamW (β2 0.99, weight
decay 0.1 on the matrices only, learning rate 1e-3). PyTorch's model is
nanoGPT's ``model.py`` written out (``F.scaled_dot_product_attention`` with
``is_causal=True``, ``GELU(approximate="tanh")``), eager, as nanoGPT's CPU
configuration runs it (``compile=False``), on as many threads as JAX uses.
A timed call is ``steps`` train steps on the same windows: jaxbp's one jitted
``run_steps`` chunk, PyTorch's Python loop. Interleaved repetitions
(:mod:`benchmarks.timing`); the ratio is PyTorch's time over jaxbp's.

PyTorch is not a dependency of jaxbp: ``pip install -e ".[peers]"`` adds it.
Without it this script prints a note and exits 0.

``python benchmarks/gpt_vs_torch.py [--quick] [--out DIR]``
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.timing import interleaved_times, median, ratio_columns, time_columns
from jaxbp import recipes
from jaxbp.data import text
from jaxbp.train import TrainState, make_optimizer, run_steps
from jaxbp.train.language import window_batches

FULL = {"layers": 4, "heads": 4, "width": 128, "batch": 12, "block": 64, "steps": 10}
QUICK = {"layers": 1, "heads": 2, "width": 16, "batch": 4, "block": 16, "steps": 2}
OPTIMIZER = {"lr": 1e-3, "beta2": 0.99, "weight_decay": 0.1, "clip_norm": 1.0}


def torch_gpt(vocab_size: int, s: dict):
    """nanoGPT's GPT in PyTorch (pre-norm blocks, tied head, GPT-2 init)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            c = s["width"]
            self.ln_1, self.ln_2 = nn.LayerNorm(c), nn.LayerNorm(c)
            self.c_attn, self.attn_proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
            self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
            heads = [z.view(b, t, s["heads"], -1).transpose(1, 2) for z in (q, k, v)]
            y = F.scaled_dot_product_attention(*heads, is_causal=True)
            x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, c))
            hidden = F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")
            return x + self.mlp_proj(hidden)

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab_size, s["width"])
            self.wpe = nn.Embedding(s["block"], s["width"])
            self.blocks = nn.ModuleList(Block() for _ in range(s["layers"]))
            self.ln_f = nn.LayerNorm(s["width"])
            for name, p in self.named_parameters():
                if p.dim() >= 2:
                    std = 0.02 / (2 * s["layers"]) ** 0.5 if "proj" in name else 0.02
                    nn.init.normal_(p, 0.0, std)
                elif "ln" not in name:
                    nn.init.zeros_(p)

        def forward(self, tokens):
            x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.ln_f(x) @ self.wte.weight.T  # the tied head

    return GPT()


def torch_chunk(vocab_size: int, s: dict, x: np.ndarray, y: np.ndarray):
    """``steps`` train steps of the PyTorch GPT on windows ``x``, ``y`` (steps, B, T)."""
    import torch
    from torch.nn import functional as F

    torch.manual_seed(0)
    model = torch_gpt(vocab_size, s)
    params = list(model.parameters())
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=OPTIMIZER["lr"], betas=(0.9, 0.99))
    xs, ys = torch.from_numpy(x).long(), torch.from_numpy(y).long()

    def chunk():
        for xb, yb in zip(xs, ys):
            logits = model(xb)
            loss = F.cross_entropy(logits.reshape(-1, vocab_size), yb.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, OPTIMIZER["clip_norm"])
            optimizer.step()
        return loss.item()

    return chunk


def jaxbp_chunk(vocab_size: int, s: dict, tokens, offsets, keys):
    """The same ``steps`` steps as one jitted ``run_steps`` chunk of jaxbp's
    manual-backprop step (what ``fit_language_model`` runs)."""
    from benchmarks.sequence import token_step

    model = recipes.language_model(
        "gpt",
        vocab_size,
        block_size=s["block"],
        layers=s["layers"],
        heads=s["heads"],
        width=s["width"],
    )
    optimizer = recipes.optimizer(
        "adamw",
        learning_rate=OPTIMIZER["lr"],
        beta2=OPTIMIZER["beta2"],
        weight_decay=OPTIMIZER["weight_decay"],
        decay_matrices_only=True,
    )
    optimizer = make_optimizer(optimizer, clip_norm=OPTIMIZER["clip_norm"])
    params = model.init(jax.random.key(0))
    state = TrainState(params, model.init_state(), optimizer.init(params))
    chunk = jax.jit(
        functools.partial(run_steps, token_step(model, optimizer, "manual"))
    )
    return functools.partial(chunk, state, tokens[:-1], tokens[1:], offsets, keys)


def compare(quick: bool, reps: int) -> dict:
    """The row: ms per step and tokens per second of both, and the ratio."""
    import torch

    s = QUICK if quick else FULL
    torch.set_num_threads(os.cpu_count() or 1)  # XLA:CPU uses every core too
    corpus = text.text_corpus(block_size=s["block"])
    shape = (s["steps"], s["batch"], s["block"])
    starts, keys = window_batches(jax.random.key(1), 1, corpus.train.shape[0], shape)
    offsets = starts[..., None] + jnp.arange(s["block"])
    x, y = np.array(corpus.train[offsets]), np.array(corpus.train[offsets + 1])
    calls = {
        "jaxbp": jaxbp_chunk(corpus.vocab_size, s, corpus.train, offsets, keys),
        "torch": torch_chunk(corpus.vocab_size, s, x, y),
    }
    times = interleaved_times(calls, reps=reps, min_seconds=0.02)
    tokens = s["steps"] * s["batch"] * s["block"]
    row = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), **s}
    for name in calls:
        row.update(time_columns(f"{name}_step_ms", times[name] / s["steps"]))
        row[f"{name}_tokens_per_s"] = tokens / median(times[name])
    row.update(ratio_columns("torch/jaxbp", times["torch"], times["jaxbp"]))
    return row


def main(argv: Sequence[str] | None = None) -> int:
    """Print the comparison (or why it is skipped) and write its JSON."""
    from benchmarks import report

    args = report.parse_args(
        "gpt_vs_torch", "The GPT's train step, jaxbp against PyTorch.", argv
    )
    try:
        import torch  # noqa: F401
    except ImportError:
        print('skipped: PyTorch is not installed (pip install -e ".[peers]")')
        return 0
    started = time.perf_counter()
    row = compare(args.quick, reps=5 if args.quick else 15)
    report.print_table(
        ["", "ms/step", "tokens/s"],
        [
            [
                name,
                f"{row[f'{name}_step_ms']:.2f}",
                f"{row[f'{name}_tokens_per_s']:,.0f}",
            ]
            for name in ("jaxbp", "torch")
        ],
        title=f"GPT train step, torch {row['torch_version']}, {row['threads']} threads",
    )
    print(
        f"PyTorch / jaxbp time: {row['torch/jaxbp']:.2f} "
        f"({row['torch/jaxbp_q1']:.2f}-{row['torch/jaxbp_q3']:.2f})"
    )
    print(f"{time.perf_counter() - started:.0f} s")
    print(f"wrote {report.write_json(args.path, {'rows': [row]})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
