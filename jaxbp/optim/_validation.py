"""Checks of hyperparameters, done when an optimizer is built.

optax itself validates almost nothing: ``optax.adam(-1.0)`` happily builds an
optimizer that climbs the loss. Here every factory checks its numbers first and
raises a ``ValueError`` naming the function, the parameter, what was expected
and what came.

Only *concrete* numbers are checked (Python / NumPy scalars and arrays, and
concrete ``jax.Array`` s). Hyperparameters may legitimately be JAX tracers, e.g.
``jax.vmap(lambda lr: train(adam(lr)))(lrs)``, whose values are unknown at build
time; those, and schedules (callables of the step count), are passed through
unchecked. A schedule is never called here.
"""

import numbers

import jax
import numpy as np


def is_inspectable(value) -> bool:
    """True if ``value`` is a number (or array of numbers) we can inspect now."""
    if isinstance(value, jax.core.Tracer) or callable(value):
        return False
    return isinstance(value, (numbers.Real, np.generic, np.ndarray, jax.Array))


def _describe(value):
    array = np.asarray(value)
    return array.item() if array.ndim == 0 else array.tolist()


def _check(where, name, value, ok, expected):
    if value is None or not is_inspectable(value):
        return
    with np.errstate(invalid="ignore"):
        valid = bool(np.all(ok(np.asarray(value))))
    if not valid:
        raise ValueError(
            f"{where}: {name} must be {expected}, got {name}={_describe(value)!r}."
        )


def check_non_negative(where: str, name: str, value) -> None:
    """Raise unless ``value >= 0`` (skipped for tracers, schedules and None)."""
    _check(where, name, value, lambda v: v >= 0, "a number >= 0")


def check_positive(where: str, name: str, value) -> None:
    """Raise unless ``value > 0`` (skipped for tracers, schedules and None)."""
    _check(where, name, value, lambda v: v > 0, "a number > 0")


def check_unit_interval(where: str, name: str, value, *, closed: bool) -> None:
    """Raise unless ``0 <= value <= 1`` (``closed``) or ``0 <= value < 1``."""
    if closed:
        _check(where, name, value, lambda v: (v >= 0) & (v <= 1), "in [0, 1]")
    else:
        _check(where, name, value, lambda v: (v >= 0) & (v < 1), "in [0, 1)")


def check_learning_rate(where: str, learning_rate) -> None:
    """A learning rate is a number >= 0 or a schedule (not checked)."""
    check_non_negative(where, "learning_rate", learning_rate)


def check_rms_hyperparameters(where, decay, eps, initial_scale, bias_correction):
    """RMSProp's: ``decay`` in [0, 1] (in [0, 1) with bias correction, which
    divides by ``1 - decay**t``), ``eps`` and ``initial_scale`` >= 0."""
    check_unit_interval(where, "decay", decay, closed=not bias_correction)
    check_non_negative(where, "eps", eps)
    check_non_negative(where, "initial_scale", initial_scale)


def check_adam_hyperparameters(where, b1, b2, eps, eps_root):
    """Adam's: ``b1``, ``b2`` in [0, 1) (``1 - b**t`` must not vanish),
    ``eps`` and ``eps_root`` >= 0."""
    check_unit_interval(where, "b1", b1, closed=False)
    check_unit_interval(where, "b2", b2, closed=False)
    check_non_negative(where, "eps", eps)
    check_non_negative(where, "eps_root", eps_root)
