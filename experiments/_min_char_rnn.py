"""Karpathy's min-char-rnn (gist 8459396, 2015) on jaxbp's pieces.

His model, loss and update, per chunk of ``seq_length`` characters with the
state ``hprev`` carried over from the previous chunk::

    x_t one-hot (V)    h_t = tanh(W_xh x_t + W_hh h_{t−1} + b_h)
    y_t = W_hy h_t + b_y    p_t = softmax(y_t)    loss = Σ_t −log p_t[target_t]
    every dparam clipped to [−5, 5]
    mem += dparam²;  param += −lr · dparam / sqrt(mem + 1e−8)        (Adagrad)

with weights N(0, 1)·0.01, biases 0, hidden 100, seq_length 25, lr 0.1, and
``smooth_loss = 0.999 smooth_loss + 0.001 loss`` started at −ln(1/V)·25.

Here the recurrence is ``jaxbp.layers.rnn_forward``/``rnn_backward`` (from
the carried h0), the head is
``dense_forward``/``dense_backward``, the loss is ``jaxbp.losses``'
cross-entropy (a mean over the 25 positions, times 25 for his sum: the same
value and gradient), and the update is ``optim.chain(optim.clip(5.0),
optim.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-8))``: jaxbp's
Adagrad computes ``G += g²; u = −lr g / sqrt(G + eps)``, his formula, once its
defaults (optax's: G starts at 0.1, eps 1e−7) are set to his (G starts at 0,
eps 1e−8). The step is ``step((TrainState, h), x_b, t_b, key)`` for
``jaxbp.train.run_steps``: ``x_b`` is one chunk of 26 token ids (25 inputs
and, shifted by one, 25 targets) and ``t_b`` a flag that resets h to 0 (the
first chunk of a pass through the text, as his ``p = 0``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import losses, optim
from jaxbp.layers import dense_backward, dense_forward, rnn_backward, rnn_forward
from jaxbp.train import TrainState

HIDDEN = 100
SEQ_LENGTH = 25
LEARNING_RATE = 0.1
CLIP = 5.0
SMOOTHING = 0.999
WEIGHT_SCALE = 0.01


def init_params(key, vocab_size: int, hidden: int = HIDDEN):
    """His initialisation: every weight N(0, 1)·0.01, biases 0 (weights stored
    as x W, the transposes of his W_xh, W_hh, W_hy)."""
    k_x, k_h, k_y = jax.random.split(key, 3)
    normal = jax.random.normal
    return {
        "rnn": {
            "w_x": WEIGHT_SCALE * normal(k_x, (vocab_size, hidden)),
            "w_h": WEIGHT_SCALE * normal(k_h, (hidden, hidden)),
            "b": jnp.zeros((hidden,)),
        },
        "out": {
            "w": WEIGHT_SCALE * normal(k_y, (hidden, vocab_size)),
            "b": jnp.zeros((vocab_size,)),
        },
    }


def optimizer(learning_rate: float = LEARNING_RATE):
    """Clip every gradient element to [−5, 5], then his Adagrad."""
    return optim.chain(
        optim.clip(CLIP),
        optim.adagrad(learning_rate, initial_accumulator_value=0.0, eps=1e-8),
    )


def loss_and_grads(params, tokens, h0):
    """His summed loss on one chunk ``tokens`` (B, 26), its gradient by the
    hand-written backward, and the last state (B, H)."""
    inputs, labels = tokens[:, :-1], tokens[:, 1:]
    vocab_size = params["out"]["b"].shape[0]
    x = jax.nn.one_hot(inputs, vocab_size)
    hs, h_last, cache = rnn_forward(params["rnn"], x, h0)
    states = jnp.swapaxes(hs, 0, 1)  # (B, T, H)
    logits = dense_forward(params["out"], states)
    ce = losses.get("cross_entropy")
    target = jax.nn.one_hot(labels, vocab_size)
    positions = labels.size  # the mean's divisor: his loss is the sum
    value = positions * ce.value(logits, target)
    dlogits = positions * ce.backward(logits, target)
    g_out, dstates = dense_backward(params["out"], states, dlogits)
    g_rnn, _, _ = rnn_backward(params["rnn"], cache, jnp.swapaxes(dstates, 0, 1))
    return value, {"rnn": g_rnn, "out": g_out}, h_last


def make_step(tx):
    """``step((TrainState, h), x_b, t_b, key) -> ((TrainState, h), loss)``."""

    def step(carry, xb, reset, key):
        del key
        train_state, h = carry
        h = jnp.where(reset[:, None], 0.0, h)
        value, grads, h = loss_and_grads(train_state.params, xb, h)
        updates, opt_state = tx.update(grads, train_state.opt_state)
        params = optim.apply_updates(train_state.params, updates)
        return (TrainState(params, (), opt_state), h), value

    return step


def chunks(tokens: np.ndarray, seq_length: int = SEQ_LENGTH):
    """His chunks in text order: rows tokens[p : p + 26] for p = 0, 25, …
    while p + 26 < len (his reset condition ``p + seq_length + 1 >= len``),
    and the reset flag of each (True for the first)."""
    starts = np.arange(0, len(tokens) - seq_length - 1, seq_length)
    rows = np.asarray(tokens)[starts[:, None] + np.arange(seq_length + 1)]
    resets = starts == 0
    return rows, resets


def smoothed(step_losses, start: float):
    """His ``smooth_loss`` after every step, from ``start``: a list with the
    value before step 1 first."""
    out, s = [start], start
    for value in np.asarray(step_losses, np.float64):
        s = SMOOTHING * s + (1 - SMOOTHING) * value
        out.append(s)
    return np.asarray(out)


def sample(params, h, seed_token: int, length: int, key):
    """His ``sample``: ``length`` characters drawn from p_t, feeding each back."""
    vocab_size = params["out"]["b"].shape[0]

    def step(carry, key_t):
        h, token = carry
        x = jax.nn.one_hot(jnp.array([[token]]), vocab_size)
        _, h, _ = rnn_forward(params["rnn"], x, h)
        logits = dense_forward(params["out"], h)
        token = jax.random.categorical(key_t, logits[0])
        return (h, token), token

    keys = jax.random.split(key, length)
    return jax.lax.scan(step, (h, jnp.asarray(seed_token)), keys)[1]
