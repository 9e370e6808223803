"""Small pytree helpers shared by the transforms (optax.tree's, re-derived).

Every helper maps leaf by leaf with ``jax.tree.map`` and takes its dtypes from
its inputs: nothing here falls back on JAX's default float dtype.
"""

import functools

import jax
import jax.numpy as jnp


def abs_sq(x):
    """|x|**2, elementwise; equal to ``x * x`` for real ``x``."""
    x = jnp.asarray(x)
    return (x.conj() * x).real


def zeros_like(tree, dtype=None):
    """A tree of zeros shaped like ``tree`` (same dtypes unless ``dtype``)."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def full_like(tree, fill_value, dtype=None):
    """A tree shaped like ``tree`` filled with ``fill_value``."""
    return jax.tree.map(lambda x: jnp.full_like(x, fill_value, dtype=dtype), tree)


def cast(tree, dtype):
    """Cast every leaf to ``dtype``; no-op when ``dtype`` is None."""
    if dtype is None:
        return tree
    return jax.tree.map(lambda x: x.astype(dtype), tree)


def cast_like(tree, other):
    """Cast every leaf of ``tree`` to the dtype of the matching leaf of ``other``."""
    return jax.tree.map(lambda x, o: x.astype(o.dtype), tree, other)


def update_moment(updates, moments, decay, order):
    """EMA of the ``order``-th power: ``m = (1 - decay) * g**order + decay * m``."""
    return jax.tree.map(
        lambda g, m: (1 - decay) * (g**order) + decay * m, updates, moments
    )


def update_moment_per_elem_norm(updates, moments, decay, order):
    """EMA of ``|g|**order`` (same as :func:`update_moment` for real ``g``)."""

    def orderth_norm(g):
        if jnp.isrealobj(g):
            return g**order
        half_order = order / 2
        if half_order == int(half_order):
            half_order = int(half_order)
        return abs_sq(g) ** half_order

    return jax.tree.map(
        lambda g, m: (1 - decay) * orderth_norm(g) + decay * m, updates, moments
    )


@functools.partial(jax.jit, inline=True)
def bias_correction(moment, decay, count):
    """Adam's debiasing ``m / (1 - decay**count)``, in the moment's dtype.

    ``1 - decay**count`` is computed first in the (possibly higher) precision
    of ``decay**count`` and only then cast: in bfloat16 ``decay**count`` would
    round to 1 and the division would blow up.

    Jitted (as in optax) so that ``count`` is always traced: on a concrete
    integer ``count``, ``decay**count`` would become ``lax.integer_pow`` with
    ``count`` baked in, i.e. a recompilation at every step and a result
    rounded differently from the ``pow`` computed under ``jit``.
    """
    correction = 1 - decay**count
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moment)


def global_norm(tree):
    """The L2 norm of all leaves of ``tree`` seen as one long vector."""
    squared_norms = [jnp.sum(abs_sq(leaf)) for leaf in jax.tree.leaves(tree)]
    return jnp.sqrt(sum(squared_norms, 0))


def safe_increment(count):
    """``count + 1``, saturating at the dtype's maximum instead of overflowing."""
    count = jnp.asarray(count)
    if jnp.issubdtype(count.dtype, jnp.integer):
        max_value = jnp.iinfo(count.dtype).max
    elif jnp.issubdtype(count.dtype, jnp.floating):
        max_value = jnp.finfo(count.dtype).max
    else:
        raise ValueError(
            "safe_increment: count must have an integer or floating dtype, "
            f"got dtype={count.dtype}."
        )
    # Python / NumPy scalars of the count's kind keep the count's dtype.
    return jnp.where(count < max_value, count + 1, max_value).astype(count.dtype)
