"""A ``custom_vjp`` bridge: a jaxbp model as a JAX function differentiated by its
own hand-written backward pass.

``f = as_jax_function(model)`` is an ordinary JAX function ``f(params, x) ->
out``. Inside a user's larger computation ``jax.grad`` (or ``vjp``) of anything
built on ``f`` pulls cotangents through ``f`` with the model's ``backward``,
not with JAX's transposition of the forward pass::

    f = jaxbp.as_jax_function(model)
    def objective(params, x, y):
        return jnp.mean((f(params, x) - y) ** 2) + 1e-3 * l2(params)
    grads = jax.grad(objective)(params, x, y)     # model part: hand-written backward

Forward (``fwd``): ``model.forward`` keeps every layer's cache as residuals.
Backward (``bwd``): ``(dparams, dx) = model.backward(params, caches, dout)``.

``state``, ``key`` and ``train`` are fixed when the function is made (they are
not differentiated); the new state of a training-mode forward pass is dropped.
The rule is reverse mode only: ``jax.jvp`` of ``f`` raises, as for every
``custom_vjp`` function.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from jaxbp.model import Model


def as_jax_function(
    model: Model, *, state=None, key=None, train: bool = False
) -> Callable:
    """``f(params, x) -> out``, whose VJP is ``model``'s hand-written backward pass.

    ``x`` is cast to the model's dtype outside the custom rule (so its cotangent
    comes back in ``x``'s own dtype). Evaluation mode by default; with
    ``train=True`` batch norm uses batch statistics and dropout draws its mask
    from ``key``.
    """
    if not isinstance(model, Model):
        raise TypeError(f"expected a jaxbp Model; got {type(model).__name__}")

    @jax.custom_vjp
    def run(params, x, state, key):
        out, _, _ = model.forward(params, state, x, key=key, train=train)
        return out

    def fwd(params, x, state, key):
        out, caches, _ = model.forward(params, state, x, key=key, train=train)
        return out, (params, caches)

    def bwd(residuals, dout):
        """(dparams, dx) = model.backward(params, caches, dout); no cotangent
        for state and key (they are not differentiated)."""
        params, caches = residuals
        grads, dx = model.backward(params, caches, dout)
        return grads, dx, None, None

    run.defvjp(fwd, bwd)

    def f(params, x):
        x = model.check_input(x)
        s = model.init_state() if state is None else state
        return run(params, x, s, key)

    f.__doc__ = f"The model's forward pass ({', '.join(model.layer_names)}) as a JAX "
    f.__doc__ += "function of (params, x), differentiated by its hand-written backward."
    return f
