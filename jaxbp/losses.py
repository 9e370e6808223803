"""Loss functions, each beside its hand-written gradient with respect to the model output.

Every loss is averaged over the batch (``B = pred.shape[0]``) and comes as a
pair: ``value(pred, target) -> scalar`` and ``backward(pred, target) -> dpred``,
where ``dpred = dL/dpred`` is where the backward pass starts.

Definitions (``pred`` is the model output, ``f``/``z`` its rows):

- ``mse``: ``L = ½ · mean_b ‖pred_b − target_b‖²``, so ``dpred = (pred − target) / B``.
- ``cross_entropy``: softmax cross-entropy on logits ``z`` with targets ``y``
  (integer classes, one-hot rows or probabilities):
  ``L = mean_b −Σ_c y_bc log softmax(z_b)_c``, so
  ``dz = (softmax(z) Σ_c y_c − y) / B`` (``= (softmax(z) − y) / B`` when rows sum to 1).
  On sequences, logits (B, T, C) with integer labels (B, T) (or rows (B, T, C)),
  the mean is over every position: ``L = −Σ_{b,t,c} y_btc log softmax(z_bt)_c / N``
  with N the number of positions whose target row is not all zero, so
  ``dz = (softmax(z) Σ_c y_c − y) / N``. A label ``IGNORE`` (−1) marks a padding
  position (its row is zero: it contributes nothing and is not counted);
  ``masked_labels(labels, mask)`` turns a boolean mask into such labels.
- ``binary_cross_entropy``: sigmoid cross-entropy on one logit ``z`` with labels
  ``y ∈ {0, 1}``: ``L = mean_b [log(1 + e^z) − y z]``, so ``dz = (σ(z) − y) / B``;
  with several outputs (multi-label) the terms of each output are summed.
- ``hinge`` with one output ``f``: ``L = mean_b max(0, 1 − t f)`` with ``t ∈ {−1, +1}``
  (labels 0/1 are mapped to −1/+1), so ``df = −t [1 − t f > 0] / B``.
- ``hinge`` with C outputs (Weston–Watkins multiclass SVM):
  ``L = mean_b Σ_{j≠y} max(0, f_j − f_y + 1)``; with ``a_j = [f_j − f_y + 1 > 0]``
  for ``j ≠ y``: ``df_j = a_j / B`` and ``df_y = −Σ_{j≠y} a_j / B``.

Both cross-entropies use log-sum-exp / log(1 + e^z) forms that stay finite for
logits of any size. At a hinge's kink the derivative is 0 (as for ReLU), and the
value is written with ``jnp.where`` on the same condition so ``jax.grad`` agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.checks import choose, concrete_values
from jaxbp.compilation import to_device


class Loss(NamedTuple):
    """A loss: ``prepare`` checks and converts targets, then ``value`` and
    ``backward`` (dL/dpred, where the backward pass starts)."""

    name: str
    value: Callable[[jax.Array, jax.Array], jax.Array]
    backward: Callable[[jax.Array, jax.Array], jax.Array]
    prepare: Callable[[jax.Array, jax.Array], jax.Array]


def _positive_part(x):
    """max(0, x), written as where(x > 0, x, 0) so its derivative at 0 is 0."""
    return jnp.where(x > 0, x, 0)


def _batch(pred):
    return pred.shape[0]


# ---------------------------------------------------------------- mse


def mse(pred, target):
    """L = ½ · mean_b ‖pred_b − target_b‖²"""
    return 0.5 * jnp.sum((pred - target) ** 2) / _batch(pred)


def mse_backward(pred, target):
    """dpred = (pred − target) / B"""
    return (pred - target) / _batch(pred)


def _prepare_regression_targets(pred, target):
    target = jnp.asarray(target)
    if pred.ndim == 2 and pred.shape[1] == 1 and target.shape == pred.shape[:1]:
        target = target[:, None]
    if target.shape != pred.shape:
        raise ValueError(
            f"mse targets must have the model output's shape {pred.shape}; "
            f"got shape {target.shape}"
        )
    return target.astype(pred.dtype)


# ---------------------------------------------------------------- cross-entropy


#: The label of a padding position in sequence targets (counts for nothing).
IGNORE = -1


def _positions(logits, probs):
    """The count the loss averages over: B for (B, C) outputs; for sequences
    (B, T, C) the positions whose target row is not all zero (at least 1)."""
    if logits.ndim == 2:
        return logits.shape[0]
    counted = jnp.sum(jnp.any(probs != 0, axis=-1))
    return jnp.maximum(counted, 1).astype(logits.dtype)


def cross_entropy(logits, probs):
    """L = −Σ_{positions, c} y_c log softmax(z)_c / N   (N = B, or counted positions)"""
    return -jnp.sum(probs * jax.nn.log_softmax(logits, axis=-1)) / _positions(
        logits, probs
    )


def cross_entropy_backward(logits, probs):
    """dz = (softmax(z) Σ_c y_c − y) / N"""
    total = jnp.sum(probs, axis=-1, keepdims=True)
    return (jax.nn.softmax(logits, axis=-1) * total - probs) / _positions(logits, probs)


def masked_labels(labels, mask):
    """Integer labels (B, T) with ``IGNORE`` where ``mask`` is False (padding)."""
    return jnp.where(jnp.asarray(mask, bool), jnp.asarray(labels), IGNORE)


def _sequence_class_targets(pred, target, loss_name):
    """Labels (B, T) -> one-hot rows (B, T, C), all zero at ``IGNORE``;
    rows (B, T, C) are taken as given."""
    num_classes = pred.shape[-1]
    if target.shape == pred.shape[:2] and jnp.issubdtype(target.dtype, jnp.integer):
        values = concrete_values(target)
        if values is not None:
            _check_class_labels(values[values != IGNORE], num_classes, loss_name)
        return jax.nn.one_hot(target, num_classes, dtype=pred.dtype)  # −1: zeros
    if target.shape == pred.shape:
        return target.astype(pred.dtype)
    raise ValueError(
        f"{loss_name} labels for sequence outputs {pred.shape} must be integer "
        f"classes of shape {pred.shape[:2]} or rows of shape {pred.shape}; "
        f"got {target.dtype} labels of shape {target.shape}"
    )


def _check_class_labels(labels, num_classes, loss_name):
    values = concrete_values(labels)
    if values is None or values.size == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{loss_name} labels must be integers in [0, {num_classes}) for a model "
            f"with {num_classes} outputs; got values in [{low}, {high}]"
        )


def _class_targets(pred, target, loss_name):
    """Integer labels (B,) -> one-hot (B, C); (B, C) rows are taken as given."""
    target = jnp.asarray(target)
    if pred.ndim != 2:
        raise ValueError(
            f"{loss_name} expects model outputs of shape (batch, classes); "
            f"got shape {pred.shape}"
        )
    batch, num_classes = pred.shape
    if target.shape == (batch,) and jnp.issubdtype(target.dtype, jnp.integer):
        _check_class_labels(target, num_classes, loss_name)
        values = concrete_values(target)
        if values is not None:  # known labels: one-hot rows without compiling an op
            return to_device(np.eye(num_classes, dtype=pred.dtype)[values])
        return jax.nn.one_hot(target, num_classes, dtype=pred.dtype)
    if target.shape == (batch, num_classes):
        return target.astype(pred.dtype)
    raise ValueError(
        f"{loss_name} labels must be integer classes of shape ({batch},) or "
        f"one-hot/probability rows of shape ({batch}, {num_classes}); "
        f"got {target.dtype} labels of shape {target.shape}"
    )


def _prepare_cross_entropy(pred, target):
    if pred.ndim == 3:
        return _sequence_class_targets(pred, jnp.asarray(target), "cross_entropy")
    return _class_targets(pred, target, "cross_entropy")


# ---------------------------------------------------------------- binary cross-entropy


def binary_cross_entropy(logits, labels):
    """L = mean_b [log(1 + e^z) − y z]"""
    return jnp.sum(jnp.logaddexp(logits, 0) - labels * logits) / _batch(logits)


def binary_cross_entropy_backward(logits, labels):
    """dz = (σ(z) − y) / B"""
    return (jax.nn.sigmoid(logits) - labels) / _batch(logits)


def _single_output_targets(pred, target, loss_name):
    """Labels of shape (B,) or (B, 1) for a model with one output."""
    target = jnp.asarray(target)
    if pred.ndim == 2 and pred.shape[1] == 1 and target.shape == pred.shape[:1]:
        target = target[:, None]
    if pred.ndim not in (1, 2) or (pred.ndim == 2 and pred.shape[1] != 1):
        raise ValueError(
            f"{loss_name} expects a model with one output, shape (batch, 1); "
            f"got outputs of shape {pred.shape}"
        )
    if target.shape != pred.shape:
        raise ValueError(
            f"{loss_name} labels must have shape ({pred.shape[0]},) or "
            f"({pred.shape[0]}, 1); got shape {target.shape}"
        )
    return target


def _prepare_binary_cross_entropy(pred, target):
    """One logit per example, or several independent ones (multi-label):
    labels of the outputs' shape (or ``(B,)`` for one output)."""
    if pred.ndim == 2 and pred.shape[1] > 1:
        target = jnp.asarray(target)
        if target.shape != pred.shape:
            raise ValueError(
                f"binary_cross_entropy labels for {pred.shape[1]} outputs must have "
                f"the outputs' shape {pred.shape}; got shape {target.shape}"
            )
    else:
        target = _single_output_targets(pred, target, "binary_cross_entropy")
    values = concrete_values(target)
    if values is not None and values.size and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            "binary_cross_entropy labels must be in {0, 1} (or probabilities in "
            f"[0, 1]); got values in [{values.min()}, {values.max()}]"
        )
    return target.astype(pred.dtype)


# ---------------------------------------------------------------- hinge


def hinge(scores, target):
    """One output: L = mean_b max(0, 1 − t f).
    C outputs (target one-hot): L = mean_b Σ_{j≠y} max(0, f_j − f_y + 1)."""
    if scores.shape[-1] == 1 or scores.ndim == 1:
        return jnp.sum(_positive_part(1 - target * scores)) / _batch(scores)
    margins = _multiclass_margins(scores, target)
    return jnp.sum(jnp.where(target > 0, 0, _positive_part(margins))) / _batch(scores)


def hinge_backward(scores, target):
    """One output: df = −t [1 − t f > 0] / B.
    C outputs: a_j = [f_j − f_y + 1 > 0] (j ≠ y); df_j = a_j / B, df_y = −Σ_j a_j / B."""
    batch = _batch(scores)
    if scores.shape[-1] == 1 or scores.ndim == 1:
        return jnp.where(1 - target * scores > 0, -target, 0) / batch
    active = jnp.where((target == 0) & (_multiclass_margins(scores, target) > 0), 1, 0)
    active = active.astype(scores.dtype)
    return (active - target * jnp.sum(active, axis=-1, keepdims=True)) / batch


def _multiclass_margins(scores, onehot):
    """m_j = f_j − f_y + 1"""
    true_score = jnp.sum(scores * onehot, axis=-1, keepdims=True)
    return scores - true_score + 1


def _prepare_hinge(pred, target):
    if pred.ndim == 2 and pred.shape[1] > 1:
        onehot = _class_targets(pred, target, "hinge")
        values = concrete_values(onehot)
        if values is not None and not np.all(np.isin(values, (0, 1))):
            raise ValueError(
                "multiclass hinge labels must be integer classes or one-hot rows; "
                "got rows with values other than 0 and 1"
            )
        return onehot
    target = _single_output_targets(pred, target, "hinge")
    values = concrete_values(target)
    if values is not None and not np.all(np.isin(values, (-1, 0, 1))):
        raise ValueError(
            "hinge labels for one output must be in {0, 1} or {−1, +1}; "
            f"got values {np.unique(values)[:6].tolist()}"
        )
    return jnp.where(target > 0, 1, -1).astype(pred.dtype)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("mse", mse, mse_backward, _prepare_regression_targets),
        Loss(
            "cross_entropy",
            cross_entropy,
            cross_entropy_backward,
            _prepare_cross_entropy,
        ),
        Loss(
            "binary_cross_entropy",
            binary_cross_entropy,
            binary_cross_entropy_backward,
            _prepare_binary_cross_entropy,
        ),
        Loss("hinge", hinge, hinge_backward, _prepare_hinge),
    )
}

#: Losses with a kink (finite differences are not valid within a step of it).
KINKED = ("hinge",)


def get(name: str) -> Loss:
    """The loss called ``name``; a ValueError lists the valid names."""
    return LOSSES[choose(name, LOSSES, "loss")]
