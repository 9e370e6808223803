"""Character-level language models for the sequence experiments, trained
through ``jaxbp.train``.

``language_model(kind, V, hidden, embed_dim, block_size)`` is embedding →
one recurrent layer (``rnn`` tanh, ``lstm`` or ``gru``, every state) → dense
over the vocabulary, cross-entropy at every position.
``train_language_model`` trains it on random windows of the corpus
(``jaxbp.data.text.text_batch``) with ``jaxbp.train.make_step`` and
``run_steps``, one compiled ``run_steps`` per evaluation interval, and records
``{"step", "train_loss", "val_loss"}`` every ``eval_interval`` steps (step 0:
before training): ``train_loss`` is the mean training loss of the steps since
the previous record, ``val_loss`` the loss on ``eval_batches`` fixed
validation windows (``jaxbp.train.evaluate``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp
from jaxbp import layers as L
from jaxbp.data import text
from jaxbp.train import (
    TrainState,
    evaluate,
    init_params,
    make_optimizer,
    make_step,
    run_steps,
)

KINDS = ("rnn", "lstm", "gru")


def recurrent_layer(kind: str, hidden: int):
    """The recurrent layer of ``kind`` returning every state."""
    if kind == "rnn":
        return L.rnn(hidden, return_sequences=True)
    return {"lstm": L.lstm, "gru": L.gru}[kind](hidden, return_sequences=True)


def language_model(kind, vocab_size, hidden, embed_dim, block_size):
    """embedding(V, embed_dim) → ``kind``(hidden) → dense(V) on (block_size,) tokens."""
    return jaxbp.sequential(
        L.embedding(vocab_size, embed_dim),
        recurrent_layer(kind, hidden),
        L.dense(vocab_size),
        in_shape=(block_size,),
    )


def parameter_count(kind, vocab_size, hidden, embed_dim) -> int:
    """Parameters of ``language_model`` (each gate has W_ih, W_hh, b_ih, b_hh;
    the tanh RNN one W_x, W_h, b)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    biases = 1 if kind == "rnn" else 2
    recurrent = gates * (hidden * (embed_dim + hidden) + biases * hidden)
    return vocab_size * embed_dim + recurrent + hidden * vocab_size + vocab_size


def hidden_for(kind, target: int, vocab_size, embed_dim) -> int:
    """The hidden size whose ``parameter_count`` is closest to ``target``."""
    sizes = np.arange(1, 4096)
    counts = [parameter_count(kind, vocab_size, h, embed_dim) for h in sizes]
    return int(sizes[np.argmin(np.abs(np.asarray(counts) - target))])


def validation_windows(corpus, batches, batch_size, block_size, seed=0):
    """``batches`` × ``batch_size`` fixed validation windows (x, y)."""
    key = jax.random.fold_in(jax.random.key(seed), 1)
    return text.text_batch(corpus, key, batches * batch_size, block_size, "val")


def _training_windows(corpus, key, steps, batch_size, block_size):
    """Every step's random training windows, (steps · B, T) each."""
    keys = jax.random.split(key, steps)
    xs, ys = jax.vmap(
        lambda k: text.text_batch(corpus, k, batch_size, block_size, "train")
    )(keys)
    return xs.reshape(-1, block_size), ys.reshape(-1, block_size)


def train_language_model(
    model,
    corpus,
    *,
    optimizer,
    steps,
    batch_size,
    block_size,
    eval_interval,
    eval_batches,
    clip_norm=None,
    seed=0,
):
    """``(params, history)`` after ``steps`` steps (module docstring)."""
    tx = make_optimizer(optimizer, clip_norm=clip_norm)
    params, state = jax.tree.map(lambda a: a[0], init_params(model, [seed]))
    vocab_size = corpus.vocab_size
    step = make_step(model, loss="cross_entropy", optimizer=tx)

    def one_hot_step(train_state, xb, yb, key):  # targets prepared per batch
        return step(
            train_state, xb, jax.nn.one_hot(yb, vocab_size, dtype=model.dtype), key
        )

    key = jax.random.key(seed)
    x, y = _training_windows(corpus, key, steps, batch_size, block_size)
    val = validation_windows(corpus, eval_batches, batch_size, block_size, seed)
    segment = jax.jit(functools.partial(run_steps, one_hot_step))
    train_state = TrainState(params, state, tx.init(params))
    history = [_record(model, train_state, val, 0, None)]
    for start in range(0, steps, eval_interval):
        n = min(eval_interval, steps - start)
        rows = np.arange(start * batch_size, (start + n) * batch_size)
        keys = jax.random.split(jax.random.fold_in(key, start), n)
        index = jnp.asarray(rows.reshape(n, batch_size))
        train_state, losses = segment(train_state, x, y, index, keys)
        history.append(_record(model, train_state, val, start + n, losses))
    return train_state.params, history


def _record(model, train_state, val, step, losses):
    val_loss, _ = evaluate(model, train_state.params, val, state=train_state.state)
    train_loss = None if losses is None else float(jnp.mean(losses))
    return {"step": step, "train_loss": train_loss, "val_loss": val_loss}
