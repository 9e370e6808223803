"""Small input checks shared by the public functions.

Every check raises a ``ValueError`` that names what was expected and what came.
Checks on array *values* (label ranges, finiteness) run only when the array is
concrete: under ``jit`` or ``vmap`` the values are not known at trace time.
"""

from __future__ import annotations

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


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds known values (not a tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def concrete_values(x: Any) -> np.ndarray | None:
    """The values of ``x`` as a NumPy array, or None when they are traced."""
    if not is_concrete(x):
        return None
    return np.asarray(x)
