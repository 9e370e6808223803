"""Evaluation: eval-mode outputs in chunks, accuracy, and ``(loss, accuracy)``.

Accuracy is the argmax for several outputs, the sign of the one output for
``binary_cross_entropy`` and ``hinge`` (threshold 0 on the logit), and None
(NaN inside compiled code) for ``mse``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxbp import losses
from jaxbp.checks import check_int
from jaxbp.train.history import as_float
from jaxbp.train.pairs import prepare_pair


def predict(model, params, x, *, state=None, batch_size=None):
    """Eval-mode outputs for all of ``x``, ``batch_size`` examples at a time.

    ``batch_size`` None (or >= the number of examples) runs everything at
    once; otherwise the whole chunks are mapped with ``lax.map`` (each sliced
    out of ``x`` in place: no padded copy of the inputs, so the program's
    working memory does not grow with the number of examples beyond the
    outputs) and the remaining examples run as one smaller chunk.
    ``state=None`` uses the model's initial state. Traceable (``batch_size``
    is a Python int).
    """
    check_int("batch_size", batch_size, 1, allow_none=True)
    n = x.shape[0]

    def apply(xb):
        return model.apply(params, xb, state=state, train=False)

    if batch_size is None or batch_size >= n:
        return apply(x)
    whole, rest = divmod(n, batch_size)
    out = jax.lax.map(
        lambda i: apply(jax.lax.dynamic_slice_in_dim(x, i * batch_size, batch_size)),
        jnp.arange(whole),
    )
    out = out.reshape(whole * batch_size, *out.shape[2:])
    if rest:
        out = jnp.concatenate([out, apply(x[whole * batch_size :])])
    return out


def accuracy(loss: str, out, target):
    """Fraction correct: argmax for several outputs, sign for one; None for mse.

    ``target`` is prepared (one-hot rows, or 0/1 for one output).
    """
    if loss == "mse":
        return None
    if out.ndim == 1 or out.shape[-1] == 1:
        right = (out.reshape(-1) > 0) == (target.reshape(-1) > 0.5)
    else:
        right = jnp.argmax(out, axis=-1) == jnp.argmax(target, axis=-1)
    return jnp.mean(right.astype(out.dtype))


def metrics(model, loss: str, params, state, x, t, batch_size):
    """``(loss value, accuracy)`` as arrays (accuracy NaN for mse), eval mode.

    ``t`` are prepared targets. Traceable: what fit and sweep compile.
    """
    out = predict(model, params, x, state=state, batch_size=batch_size)
    value = losses.get(loss).value(out, t)
    right = accuracy(loss, out, t)
    if right is None:
        right = jnp.full((), jnp.nan, value.dtype)
    return value, right


_metrics_jit = jax.jit(metrics, static_argnames=("model", "loss", "batch_size"))


def evaluate(model, params, data, *, state=None, loss="cross_entropy", batch_size=None):
    """``(loss, accuracy)`` of the model on ``data = (x, y)`` in evaluation mode.

    Python floats; ``accuracy`` is None for ``mse``. ``state=None`` uses the
    model's initial state. ``batch_size`` bounds how many examples go through
    the model at once (the result does not depend on it, up to rounding).
    """
    x, t, state = prepare_pair(model, params, data, "data", loss, state)
    check_int("batch_size", batch_size, 1, allow_none=True)
    value, right = _metrics_jit(model, loss, params, state, x, t, batch_size)
    value, right = jax.device_get((value, right))
    return as_float(value), (None if loss == "mse" else as_float(right))


def compile_evaluate(model, data, *, loss="cross_entropy", batch_size=None) -> None:
    """Compile what :func:`evaluate` runs for ``data``, before there are
    parameters (only their shapes are used): a later ``evaluate(model, params,
    data, ...)`` with the same ``loss`` and ``batch_size`` runs without
    compiling. (The CLI does this in the background while training runs.)"""
    params, state = jax.eval_shape(lambda: model.init_with_state(jax.random.key(0)))
    x, t, state = prepare_pair(model, params, data, "data", loss, state)
    check_int("batch_size", batch_size, 1, allow_none=True)
    _metrics_jit.lower(model, loss, params, state, x, t, batch_size).compile()
