"""The ``(x, y)`` pairs that fit, sweep and evaluate take, as checked arrays."""

from __future__ import annotations

from jaxbp import backprop as bp


def unpack_pair(pair, name: str):
    """``(x, y)`` from ``pair`` (e.g. a ``jaxbp.data.Split``), or a ValueError naming it."""
    try:
        x, y = pair
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be an (x, y) pair such as jaxbp.data.Split; "
            f"got {type(pair).__name__}"
        ) from None
    return x, y


def prepare_pair(model, params, pair, name: str, loss: str, state):
    """``(x, targets, state)``: inputs checked and cast, labels prepared for
    ``loss`` (one-hot rows for integer classes), ``state=None`` made the
    model's initial state (``jaxbp.backprop.prepare``)."""
    x, t, _, state = bp.prepare(model, params, *unpack_pair(pair, name), loss, state)
    return x, t, state
