"""Apply a transformation to part of the parameters only (optax.masked)."""

from typing import Any, NamedTuple

import jax

from ._base import GradientTransformation, accepts_extra_args


class MaskedState(NamedTuple):
    """The state of the inner transformation, built on the masked params."""

    inner_state: Any


class MaskedNode(NamedTuple):
    """Stands for a masked-out leaf or subtree: a pytree node with no leaves.

    ``jax.tree.map`` skips it, so the inner transformation neither sees nor
    stores anything for the masked-out parameters.
    """


def _mask_is_callable(mask) -> bool:
    # Like optax: the mask is a function when every leaf of it is callable (a
    # bare function is its own single leaf; a pytree of bools is not).
    callable_leaves = jax.tree.leaves(jax.tree.map(callable, mask))
    return len(callable_leaves) > 0 and all(callable_leaves)


def masked(inner, mask, *, mask_compatible_extra_args=False) -> GradientTransformation:
    """Transform only the leaves where ``mask`` is True; pass the others through.

    ``u = inner(g)`` where ``mask`` is True, ``u = g`` where it is False.

    ``mask`` is a pytree of bools with the structure of the params (or a prefix
    of it: a bool then covers a whole subtree), or a callable returning one
    from the params (at ``init``) or the updates (at ``update``). It must be
    static (Python bools) under ``jax.jit``. The inner state covers the True
    leaves only. With ``mask_compatible_extra_args``, extra keyword arguments
    with the params' tree structure are masked too before reaching ``inner``.
    """
    inner_update = inner.update
    inner_takes_extra_args = accepts_extra_args(inner_update)
    mask_fn = mask if _mask_is_callable(mask) else (lambda tree: mask)

    def mask_tree(tree, mask_values):
        return jax.tree.map(lambda m, x: x if m else MaskedNode(), mask_values, tree)

    def mask_extra_args(extra_args, updates, mask_values):
        structure = jax.tree.structure(updates)

        def maybe_mask(value):
            if mask_compatible_extra_args and jax.tree.structure(value) == structure:
                return mask_tree(value, mask_values)
            return value

        return {k: maybe_mask(v) for k, v in extra_args.items()}

    def init(params):
        return MaskedState(inner_state=inner.init(mask_tree(params, mask_fn(params))))

    def update(updates, state, params=None, **extra_args):
        mask_values = mask_fn(updates)
        masked_updates = mask_tree(updates, mask_values)
        masked_params = None if params is None else mask_tree(params, mask_values)
        if inner_takes_extra_args:
            new_masked_updates, inner_state = inner_update(
                masked_updates,
                state.inner_state,
                masked_params,
                **mask_extra_args(extra_args, updates, mask_values),
            )
        else:
            new_masked_updates, inner_state = inner_update(
                masked_updates, state.inner_state, masked_params
            )
        new_updates = jax.tree.map(
            lambda m, new, old: new if m else old,
            mask_values,
            new_masked_updates,
            updates,
        )
        return new_updates, MaskedState(inner_state=inner_state)

    return GradientTransformation(init, update)
