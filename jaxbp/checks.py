"""Input validators shared by every public function (one module, one of each).

Every check raises a ``ValueError`` naming the argument, what was expected and
what came. Checks on array *values* (label ranges, finiteness) run only when the
array is concrete: under ``jit`` or ``vmap`` the values are not known at trace
time (:func:`concrete_values` returns None there).

``jaxbp.optim`` keeps its own small validators (``optim/_validation.py``): it
imports nothing of jaxbp outside itself, so that it can stand beside optax.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import jax
import numpy as np


def choose(name: Any, options: Iterable[str], what: str) -> str:
    """Return ``name`` if it is one of ``options``, else raise a ValueError listing them."""
    options = tuple(options)
    if not isinstance(name, str) or name not in options:
        raise ValueError(
            f"unknown {what} {name!r}; expected one of: {', '.join(options)}"
        )
    return name


def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number (Python or NumPy), not a bool; may be inf or NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A real number, not a bool, finite."""
    return is_number(value) and math.isfinite(value)


def check_int(name: str, value: Any, low: int, *, allow_none: bool = False) -> None:
    """Raise unless ``value`` is an integer >= ``low`` (or None when allowed)."""
    if allow_none and value is None:
        return
    if not (is_int(value) and value >= low):
        none = " or None" if allow_none else ""
        raise ValueError(f"{name} must be an integer >= {low}{none}; got {value!r}")


def check_seed(value: Any, name: str = "seed") -> None:
    """Raise unless ``value`` is an integer in [0, 2**32) (``jax.random.key``
    maps seeds outside uint32 differently with x64 on and off)."""
    if not (is_int(value) and 0 <= value < 2**32):
        raise ValueError(f"{name} must be an integer in [0, 2**32); got {value!r}")


def is_traced(x: Any) -> bool:
    """True when ``x`` is a tracer inside ``jit``/``vmap``/``grad`` (values unknown)."""
    return isinstance(x, jax.core.Tracer)


def concrete_values(x: Any) -> np.ndarray | None:
    """The values of ``x`` as a NumPy array, or None when they are traced."""
    if is_traced(x):
        return None
    return np.asarray(x)
