"""Gradient clipping: bound the size of the updates."""

import jax
import jax.numpy as jnp

from . import _tree
from ._base import GradientTransformation, init_empty_state
from ._validation import check_positive


def clip(max_delta) -> GradientTransformation:
    """Clip every element to ``[-max_delta, max_delta]``.

    ``u = clip(g, -max_delta, max_delta)``; ``max_delta`` must be > 0.
    """
    check_positive("clip", "max_delta", max_delta)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(
            lambda g: jnp.clip(g, -max_delta, max_delta), updates
        ), state

    return GradientTransformation(init_empty_state, update)


def clip_by_global_norm(max_norm) -> GradientTransformation:
    """Rescale all updates together when their global norm exceeds ``max_norm``.

    ``n = sqrt(sum over all leaves of sum(g**2))``
    ``u = g`` if ``n < max_norm`` else ``u = g / n * max_norm``
    The direction is kept, only the length is capped. ``max_norm`` must be > 0.

    Reference: Pascanu, Mikolov & Bengio, "On the difficulty of training
    Recurrent Neural Networks", ICML 2013, https://arxiv.org/abs/1211.5063
    """
    check_positive("clip_by_global_norm", "max_norm", max_norm)

    def update(updates, state, params=None):
        del params
        norm = _tree.global_norm(updates)
        keep = norm < max_norm

        def clip_leaf(g):
            clipped = (g / norm.astype(g.dtype)) * jnp.asarray(max_norm, g.dtype)
            return jnp.where(keep, g, clipped)

        return jax.tree.map(clip_leaf, updates), state

    return GradientTransformation(init_empty_state, update)
