"""The optimizer protocol: a pair of pure functions ``init`` and ``update``.

An optimizer (or any piece of one) is a :class:`GradientTransformation`::

    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = apply_updates(params, updates)        # params + updates

States are NamedTuples of arrays, hence pytrees: they go through ``jax.jit``,
``jax.vmap`` and ``jax.lax.scan`` untouched. The protocol is optax's, so an
optax transform can sit inside :func:`chain` and a jaxbp transform inside
``optax.chain``.
"""

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Params = Any
Updates = Any
OptState = Any
Schedule = Callable[[jax.Array], jax.Array]
ScalarOrSchedule = float | jax.Array | Schedule

NO_PARAMS_MSG = (
    "You are using a transformation that requires the current value of "
    "parameters, but you are not passing `params` when calling `update`."
)


class GradientTransformation(NamedTuple):
    """``init(params) -> state`` and ``update(updates, state, params) -> (u, s)``."""

    init: Callable[[Params], OptState]
    update: Callable[..., tuple[Updates, OptState]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def init_empty_state(params: Params) -> EmptyState:
    """``init`` of a stateless transformation."""
    del params
    return EmptyState()


def identity() -> GradientTransformation:
    """Leave the updates unchanged: ``u = g``."""

    def update(updates, state, params=None):
        del params
        return updates, state

    return GradientTransformation(init_empty_state, update)


def accepts_extra_args(update_fn) -> bool:
    """Whether ``update_fn`` takes ``**extra_args`` (optax's extra-args protocol)."""
    try:
        parameters = inspect.signature(update_fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def with_extra_args(update_fn):
    """Wrap ``update_fn`` so that it accepts, and drops, ``**extra_args``."""
    if accepts_extra_args(update_fn):
        return update_fn

    def update(updates, state, params=None, **extra_args):
        del extra_args
        return update_fn(updates, state, params)

    return update


def chain(*transforms) -> GradientTransformation:
    """Apply ``transforms`` one after the other; the state is the tuple of states.

    ``u = t_n(...t_2(t_1(g)))`` with each ``t_i`` updating its own state.
    Extra keyword arguments of ``update`` are passed to the transforms whose
    ``update`` accepts ``**extra_args`` (e.g. optax's extra-args transforms) and
    dropped for the others.
    """
    init_fns = tuple(t.init for t in transforms)
    update_fns = tuple(with_extra_args(t.update) for t in transforms)

    def init(params):
        return tuple(fn(params) for fn in init_fns)

    def update(updates, state, params=None, **extra_args):
        if len(state) != len(update_fns):
            raise ValueError(
                f"chain: expected a state with {len(update_fns)} entries (one per "
                f"transform), got {len(state)}; build it with the chain's init."
            )
        new_state = []
        for fn, s in zip(update_fns, state):
            updates, s = fn(updates, s, params, **extra_args)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates``, leaf by leaf, keeping each parameter's dtype."""
    return jax.tree.map(
        lambda p, u: (
            None if p is None else jnp.asarray(p + u).astype(jnp.asarray(p).dtype)
        ),
        params,
        updates,
        is_leaf=lambda x: x is None,
    )
