"""Character-level language models for the sequence experiments.

The model is ``jaxbp.recipes.language_model(kind, V, hidden=(H,),
embed_dim=D)``: embedding → one recurrent layer (``rnn`` tanh, ``lstm`` or
``gru``, every state) → dense over the vocabulary, cross-entropy at every
position. ``train_language_model`` is ``jaxbp.train.fit_language_model`` (random
windows of the training text, a validation loss every ``eval_interval``
steps on fixed validation windows) with one record more at the front: step 0,
the validation loss of the initial parameters on the same windows (which
``fit_language_model`` does not measure).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxbp import recipes
from jaxbp.data import text
from jaxbp.train import fit_language_model, train_keys
from jaxbp.train.language import validation_loss, window_batches

KINDS = ("rnn", "lstm", "gru")


def language_model(kind, vocab_size, hidden, embed_dim, block_size):
    """``recipes.language_model`` with one recurrent layer of ``hidden`` units."""
    return recipes.language_model(
        kind, vocab_size, block_size=block_size, hidden=(hidden,), embed_dim=embed_dim
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
    """``batches`` × ``batch_size`` fixed validation windows (x, y), drawn
    with ``text_batch`` (for measurements outside training)."""
    key = jax.random.fold_in(jax.random.key(seed), 1)
    return text.text_batch(corpus, key, batches * batch_size, block_size, "val")


def initial_record(model, corpus, *, batch_size, block_size, eval_batches, seed):
    """Step 0: ``fit_language_model(seed=seed)``'s initial parameters on its
    validation windows (the same draw as its evaluations)."""
    init_key, train_key = train_keys(jax.random.key(seed))
    params, state = model.init_with_state(init_key)
    val = corpus.val
    starts, _ = window_batches(
        train_key, 0, val.shape[0], (eval_batches, batch_size, block_size)
    )
    value = validation_loss(
        model, "cross_entropy", params, state, val, starts, block_size
    )
    return {"step": 0, "train_loss": None, "val_loss": float(value)}, params


def train_language_model(model, corpus, *, seed=0, **settings):
    """``(initial params, trained params, history)``: ``fit_language_model``
    on the corpus with ``settings`` (optimizer, steps, batch_size, block_size,
    eval_interval, eval_batches, clip_norm), the step-0 record first."""
    first, start = initial_record(
        model,
        corpus,
        batch_size=settings["batch_size"],
        block_size=settings["block_size"],
        eval_batches=settings["eval_batches"],
        seed=seed,
    )
    result = fit_language_model(
        model, corpus.train, corpus.val, seed=seed, vocab=corpus.vocab, **settings
    )
    return start, result.params, [first, *result.history]
