"""Generating tokens from a next-token model, one at a time.

The model sees what it was trained on: windows of at most ``block_size``
tokens (its input length). Position ``p``'s logits come from the window
ending at ``p``; a window shorter than ``block_size`` (at the start) is
padded on the right, which cannot change position ``p``'s output because
every jaxbp sequence model is causal (position ``p`` depends on tokens
``≤ p`` only). Each next token is drawn from ``softmax(logits / temperature)``,
restricted to the ``top_k`` most likely tokens when asked::

    p_i ∝ exp(z_i / τ)   for the k largest z_i, 0 for the others
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxbp.checks import check_int, is_finite_number
from jaxbp.model import Model


def next_token_logits(model: Model, params, state, tokens, position):
    """Logits (V,) of the token after ``tokens[position]``, from the window of
    ``block_size`` tokens ending there (``tokens`` at least that long)."""
    block_size = model.in_shape[0]
    start = jnp.clip(position - block_size + 1, 0, tokens.shape[0] - block_size)
    window = jax.lax.dynamic_slice_in_dim(tokens, start, block_size)
    logits = model.apply(params, window[None], state=state, train=False)
    return logits[0, position - start]


def sample_logits(key, logits, temperature: float, top_k: int | None):
    """One token drawn from ``softmax(logits / temperature)`` over the
    ``top_k`` largest logits (all of them when None)."""
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][-1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits)


@functools.partial(jax.jit, static_argnames=("model", "length", "top_k"))
def _generate(model, params, state, prompt, key, temperature, *, length, top_k):
    block_size = model.in_shape[0]
    n = prompt.shape[0]
    tokens = jnp.zeros((max(block_size, n + length),), prompt.dtype)
    tokens = tokens.at[:n].set(prompt)

    def step(tokens, i):
        position = n - 1 + i
        logits = next_token_logits(model, params, state, tokens, position)
        token = sample_logits(jax.random.fold_in(key, i), logits, temperature, top_k)
        return tokens.at[position + 1].set(token.astype(tokens.dtype)), None

    tokens, _ = jax.lax.scan(step, tokens, jnp.arange(length))
    return tokens[n : n + length]


def generate(
    model: Model,
    params,
    prompt,
    length: int,
    *,
    key,
    temperature: float = 1.0,
    top_k: int | None = None,
    state=None,
):
    """``length`` tokens following ``prompt`` (a non-empty 1-D integer array).

    ``model`` maps tokens (B, block_size) to logits (B, block_size, V) and is
    causal (e.g. ``jaxbp.recipes.language_model``). The same ``key`` gives
    the same tokens. ``temperature`` > 0 (lower: more likely tokens);
    ``top_k``: draw only among the k most likely tokens.
    """
    prompt = jnp.asarray(prompt)
    if prompt.ndim != 1 or prompt.shape[0] < 1:
        raise ValueError(
            f"prompt must be a non-empty 1-D array; got shape {prompt.shape}"
        )
    if not jnp.issubdtype(prompt.dtype, jnp.integer):
        raise ValueError(f"prompt must hold integer tokens; got dtype {prompt.dtype}")
    check_int("length", length, 1)
    check_int("top_k", top_k, 1, allow_none=True)
    if not (is_finite_number(temperature) and temperature > 0):
        raise ValueError(
            f"temperature must be a finite number > 0; got {temperature!r}"
        )
    vocab_size = model.out_shape[-1]
    if int(prompt.min()) < 0 or int(prompt.max()) >= vocab_size:
        raise ValueError(f"prompt tokens must lie in [0, {vocab_size})")
    state = model.init_state() if state is None else state
    return _generate(
        model, params, state, prompt, key, temperature, length=length, top_k=top_k
    )
