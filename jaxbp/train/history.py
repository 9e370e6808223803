"""What the epochs of a fit leave behind: records, the best epoch, early stopping, divergence."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class TrainingDiverged(ValueError):
    """The training loss (or the parameters) became NaN or infinite.

    Attributes: ``epoch`` and ``step`` (1-based, the step within the epoch),
    ``loss`` (the bad value), ``history`` (records of the good epochs) and
    ``checkpoint`` (path of the last good checkpoint, or None).
    """

    def __init__(self, message, *, epoch, step, loss, history, checkpoint=None):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.loss = loss
        self.history = history
        self.checkpoint = checkpoint


class Progress(NamedTuple):
    """Where a fit stands after ``epoch`` epochs.

    ``current``: the train state now; ``best``: the train state after the
    epoch of lowest validation loss (kept only with early stopping, else
    None); ``history``: one record per epoch; ``best_val_loss`` /
    ``best_epoch``: that epoch (0 before any); ``stopped_early``: patience ran out.
    """

    current: Any
    best: Any
    history: list
    epoch: int = 0
    best_val_loss: float = math.inf
    best_epoch: int = 0
    stopped_early: bool = False


def start(train_state, patience) -> Progress:
    """The progress before the first epoch."""
    return Progress(train_state, train_state if patience is not None else None, [])


def as_float(value) -> float:
    """A number as the Python float that prints as ``value`` does: a float32
    0.99999994 stays 0.99999994, not its float64 widening 0.9999999403953552."""
    value = np.asarray(value)[()]  # a NumPy scalar prints its shortest form
    return float(value) if value.dtype == np.float64 else float(str(value))


def make_record(epoch, train_loss, metrics, has_val: bool, loss: str) -> dict:
    """An epoch's record: Python floats, None where there is no such number."""
    train_accuracy, val_loss, val_accuracy = metrics
    classification = loss != "mse"
    return {
        "epoch": epoch,
        "train_loss": as_float(train_loss),
        "val_loss": as_float(val_loss) if has_val else None,
        "val_accuracy": (
            as_float(val_accuracy) if has_val and classification else None
        ),
        "train_accuracy": as_float(train_accuracy) if classification else None,
    }


def advance(
    progress: Progress, train_state, record: dict, patience, epoch: int
) -> Progress:
    """The progress after epoch (or round) ``epoch``: its record appended, the
    best epoch and early stopping updated (a NaN validation loss never improves)."""
    progress = progress._replace(
        current=train_state, history=[*progress.history, record], epoch=epoch
    )
    val_loss = record["val_loss"]
    if val_loss is not None and val_loss < progress.best_val_loss:
        best = train_state if patience is not None else None
        return progress._replace(best_val_loss=val_loss, best_epoch=epoch, best=best)
    if patience is not None and epoch - progress.best_epoch >= patience:
        return progress._replace(stopped_early=True)
    return progress


def best_epoch(history) -> int:
    """The epoch of the lowest validation loss (first of ties); the last epoch
    without validation."""
    best, best_loss = (history[-1]["epoch"] if history else 0), math.inf
    if history and history[0]["val_loss"] is not None:
        for record in history:
            if record["val_loss"] < best_loss:  # NaN never improves
                best, best_loss = record["epoch"], record["val_loss"]
    return best


def all_finite(tree):
    """A boolean array: every inexact leaf of ``tree`` is finite (traceable)."""
    leaves = [
        jnp.all(jnp.isfinite(leaf))
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(leaf.dtype, jnp.inexact)
    ]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def first_bad_step(step_losses) -> tuple[int, float]:
    """``(step, loss)``: the 1-based first step with a non-finite loss, or
    the last step and NaN when only the parameters went non-finite."""
    bad = np.flatnonzero(~np.isfinite(step_losses))
    if bad.size:
        return int(bad[0]) + 1, float(step_losses[bad[0]])
    return len(step_losses), float("nan")


def raise_diverged(epoch, step_losses, history, checkpoint):
    """Raise :class:`TrainingDiverged` naming the epoch and its first bad step
    (the last step when only the parameters went non-finite)."""
    step, value = first_bad_step(step_losses)
    if math.isnan(value) and np.all(np.isfinite(step_losses)):
        where = f"non-finite parameters after epoch {epoch}, step {step}"
        what = f"{where} (the update of the last step overflowed)"
    else:
        what = f"non-finite training loss ({value}) at epoch {epoch}, step {step}"
    raise TrainingDiverged(
        f"training diverged: {what} of {len(step_losses)}; try a smaller "
        f"learning rate or clip_norm{kept_checkpoint(checkpoint)}",
        epoch=epoch,
        step=step,
        loss=value,
        history=list(history),
        checkpoint=checkpoint,
    )


def kept_checkpoint(checkpoint) -> str:
    """``"; the last good checkpoint is PATH"``, or nothing without one."""
    return "" if checkpoint is None else f"; the last good checkpoint is {checkpoint}"
