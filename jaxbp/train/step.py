"""The train step: loss and gradient on one batch, the L2 term, one optimizer update.

::

    L, g   = loss and gradient on the batch     (manual backprop or autodiff)
    L     += ½ λ Σ_W ‖W‖² ;  g_W += λ W         (l2 = λ; weights only)
    u, s   = optimizer.update(g, s, θ)          (clip_by_global_norm first, if asked)
    θ      = θ + u
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from jaxbp import backprop as bp
from jaxbp import executable_cache, losses, optim
from jaxbp.checks import choose, is_finite_number, is_number
from jaxbp.compilation import programs_per_process
from jaxbp.model import Model
from jaxbp.regularization import add_l2_grad, l2_penalty


class TrainState(NamedTuple):
    """What a train step carries: parameters, model state, optimizer state."""

    params: Any
    state: Any
    opt_state: Any


def init_train_state(optimizer, params, state) -> TrainState:
    """The train state before the first step: ``optimizer.init(params)``
    compiled as one program (run op by op, every zeros-like buffer of the
    optimizer's state would compile a program of its own)."""
    return TrainState(params, state, _init_program(optimizer.init)(params))


@programs_per_process(maxsize=16)
def _init_program(init):
    """``init`` jitted once per function: a later fit with the same
    optimizer reuses the compiled program without tracing it again."""
    return executable_cache.jit(init)


def is_gradient_transformation(optimizer) -> bool:
    """Whether ``optimizer`` has the optax protocol's ``init`` and ``update``."""
    return callable(getattr(optimizer, "init", None)) and callable(
        getattr(optimizer, "update", None)
    )


def check_optimizer(optimizer) -> None:
    """Raise unless ``optimizer`` is a GradientTransformation (jaxbp.optim or optax)."""
    if not is_gradient_transformation(optimizer):
        raise ValueError(
            "optimizer must be a GradientTransformation (jaxbp.optim or optax, "
            f"with init and update); got {type(optimizer).__name__}"
        )


def check_clip_norm(clip_norm) -> None:
    """Raise unless ``clip_norm`` is None or a finite number > 0."""
    if clip_norm is not None and not (is_finite_number(clip_norm) and clip_norm > 0):
        raise ValueError(
            f"clip_norm must be a finite number > 0 or None; got {clip_norm!r}"
        )


def check_l2(l2) -> None:
    """Raise unless ``l2`` is None, a finite number >= 0 or an array (whose
    values may be traced, so they are not checked here)."""
    if is_number(l2):
        if is_finite_number(l2) and l2 >= 0:
            return
    elif l2 is None or hasattr(l2, "dtype"):
        return
    raise ValueError(f"l2 must be a finite number >= 0 or an array; got {l2!r}")


def has_l2(l2) -> bool:
    """Whether the step adds the penalty: a Python 0 or None leaves it out of
    the program; an array (maybe traced) is always applied."""
    return l2 is not None and not (is_number(l2) and l2 == 0)


def make_optimizer(optimizer, *, clip_norm=None):
    """``chain(clip_by_global_norm(clip_norm), optimizer)``, or ``optimizer``
    itself when ``clip_norm`` is None: the transformation :func:`fit` applies
    (its ``init`` makes the optimizer state a step carries)."""
    check_optimizer(optimizer)
    if clip_norm is None:
        return optimizer
    check_clip_norm(clip_norm)
    return optim.chain(optim.clip_by_global_norm(clip_norm), optimizer)


def make_step(
    model: Model,
    *,
    loss: str = "cross_entropy",
    optimizer,
    backprop: str = "manual",
    l2=0.0,
    batch_sharding=None,
):
    """A pure train step ``step(train_state, x_b, t_b, key) -> (train_state, loss)``.

    ``t_b`` are *prepared* targets (``backprop.prepare``: one-hot rows for
    integer classes); ``key`` is the step's PRNG key (or None for a model
    without random layers). The returned loss is the objective before the
    update: the data loss plus ``½ l2 Σ_W ‖W‖²`` (weight matrices and kernels
    only, see ``jaxbp.regularization``). ``optimizer`` is used as given: for
    clipping pass ``make_optimizer(optimizer, clip_norm=c)``, and build
    ``train_state.opt_state`` with the same transformation's ``init``.
    ``l2`` may be an array, also a traced one (to ``jax.vmap`` over L2
    strengths); a Python 0 or None leaves the penalty out of the program.
    ``batch_sharding`` (data parallelism) constrains the batch's sharding.
    Compile the step with ``jax.jit`` or run it with :func:`run_steps`.
    """
    choose(backprop, bp.BACKPROPS, "backprop")
    check_optimizer(optimizer)
    check_l2(l2)
    loss_fn = losses.get(loss)
    penalised = has_l2(l2)
    grad_fn = (
        bp.manual_loss_and_grad if backprop == "manual" else bp.autodiff_loss_and_grad
    )

    def step(train_state: TrainState, xb, tb, key):
        params, state, opt_state = train_state
        if batch_sharding is not None:
            xb = jax.lax.with_sharding_constraint(xb, batch_sharding)
            tb = jax.lax.with_sharding_constraint(tb, batch_sharding)
        result = grad_fn(model, loss_fn, params, state, xb, tb, key=key, train=True)
        value, grads = result.value, result.grads
        if penalised:
            value = value + l2_penalty(params, l2).astype(value.dtype)
            grads = add_l2_grad(grads, params, l2)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optim.apply_updates(params, updates)
        return TrainState(params, result.state, opt_state), value

    return step
