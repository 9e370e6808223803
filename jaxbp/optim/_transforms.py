"""Gradient transformations: the small pieces optimizers are chained from.

Notation in the docstrings: ``g`` is the incoming update (the gradient, or
what earlier transforms made of it), ``u`` the outgoing update, ``t`` the
1-based step number, ``**`` a power, all operations elementwise.

Scalars that multiply an update (``scale``'s step size, a learning rate, a
weight decay) are cast to the update's dtype first, so float32 updates stay
float32 even when the scalar is a float64 array or tracer.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _tree
from ._base import (
    NO_PARAMS_MSG,
    EmptyState,
    GradientTransformation,
    identity,
    init_empty_state,
)
from ._masking import masked
from ._validation import (
    check_adam_hyperparameters,
    check_learning_rate,
    check_non_negative,
    check_rms_hyperparameters,
    check_unit_interval,
)


def _like(scalar, x):
    """``scalar`` as an array of ``x``'s dtype (Python numbers are weakly typed
    in JAX and already take ``x``'s dtype, so they are left as they are)."""
    if isinstance(scalar, (int, float)):
        return scalar
    return jnp.asarray(scalar, dtype=jnp.result_type(x))


# --- scaling -----------------------------------------------------------------


def scale(step_size) -> GradientTransformation:
    """Multiply by a fixed scalar: ``u = step_size * g``."""

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda g: _like(step_size, g) * g, updates), state

    return GradientTransformation(init_empty_state, update)


class ScaleByScheduleState(NamedTuple):
    """The step counter of a schedule (int32, number of updates done)."""

    count: jax.Array


def scale_by_schedule(step_size_fn) -> GradientTransformation:
    """Multiply by a scheduled scalar: ``u = step_size_fn(count) * g``.

    ``count`` starts at 0 and is incremented *after* it is used, so update
    number ``t`` (1-based) uses ``step_size_fn(t - 1)``.
    """

    def init(params):
        del params
        return ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        step_size = step_size_fn(state.count)
        updates = jax.tree.map(lambda g: _like(step_size, g) * g, updates)
        return updates, ScaleByScheduleState(count=_tree.safe_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate=None, *, flip_sign=True):
    """Scale by minus the learning rate: ``u = -lr * g`` (``+lr`` if not flip_sign).

    ``learning_rate`` is a number (-> :func:`scale`), a schedule ``count -> lr``
    (-> :func:`scale_by_schedule`, with a step counter in the state), or None
    (-> :func:`identity`). The minus sign turns a gradient into a descent step.
    """
    check_learning_rate("scale_by_learning_rate", learning_rate)
    if learning_rate is None:
        return identity()
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# --- momentum ----------------------------------------------------------------


class TraceState(NamedTuple):
    """The momentum buffer ``m``."""

    trace: Any


def trace(decay, nesterov=False, accumulator_dtype=None) -> GradientTransformation:
    """Heavy-ball momentum (a trace of past updates, not an average).

    ``m = g + decay * m ; u = m``, or with Nesterov ``u = g + decay * m``
    (using the new ``m``). ``m`` starts at 0, stored in ``accumulator_dtype``
    (default: the params' dtype). ``decay`` must be in [0, 1].

    Reference: Sutskever et al., "On the importance of initialization and
    momentum in deep learning", ICML 2013.
    """
    check_unit_interval("trace", "decay", decay, closed=True)
    if accumulator_dtype is not None:
        accumulator_dtype = jax.dtypes.canonicalize_dtype(accumulator_dtype)

    def init(params):
        return TraceState(trace=_tree.zeros_like(params, dtype=accumulator_dtype))

    def update(updates, state, params=None):
        del params

        def step(g, m):
            return g + decay * m

        new_trace = jax.tree.map(step, updates, state.trace)
        updates = jax.tree.map(step, updates, new_trace) if nesterov else new_trace
        return updates, TraceState(trace=_tree.cast(new_trace, accumulator_dtype))

    return GradientTransformation(init, update)


# --- adaptive scalings -------------------------------------------------------


class ScaleByRssState(NamedTuple):
    """The running sum of squared gradients ``G``."""

    sum_of_squares: Any


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7) -> GradientTransformation:
    """Divide by the root of the sum of all squared gradients so far (Adagrad).

    ``G = G + g**2`` (``G`` starts at ``initial_accumulator_value``)
    ``u = g / sqrt(G + eps)`` where ``G > 0``, and ``u = 0`` where ``G == 0``.

    Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", JMLR 2011.
    """
    where = "scale_by_rss"
    check_non_negative(where, "initial_accumulator_value", initial_accumulator_value)
    check_non_negative(where, "eps", eps)

    def init(params):
        return ScaleByRssState(
            sum_of_squares=_tree.full_like(params, initial_accumulator_value)
        )

    def update(updates, state, params=None):
        del params
        sum_of_squares = jax.tree.map(
            lambda g, s: _tree.abs_sq(g) + s, updates, state.sum_of_squares
        )
        inv_root = jax.tree.map(
            lambda s: jnp.where(s > 0, jax.lax.rsqrt(s + eps), 0.0), sum_of_squares
        )
        updates = jax.tree.map(lambda r, g: r * g, inv_root, updates)
        return updates, ScaleByRssState(sum_of_squares=sum_of_squares)

    return GradientTransformation(init, update)


class ScaleByRmsState(NamedTuple):
    """The EMA of squared gradients ``nu``."""

    nu: Any


class ScaleByRmsWithCountState(NamedTuple):
    """The EMA of squared gradients ``nu`` and the step count (bias correction)."""

    count: jax.Array
    nu: Any


def _inverse_root(eps, eps_in_sqrt):
    if eps_in_sqrt:
        return lambda v: jax.lax.rsqrt(v + eps)
    return lambda v: 1 / (jnp.sqrt(v) + eps)


def scale_by_rms(
    decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False
) -> GradientTransformation:
    """Divide by the root of an EMA of squared gradients (RMSProp).

    ``nu = decay * nu + (1 - decay) * g**2`` (``nu`` starts at ``initial_scale``)
    ``nu_hat = nu / (1 - decay**t)`` if ``bias_correction`` else ``nu``
    ``u = g / sqrt(nu_hat + eps)`` (``eps_in_sqrt``) or
    ``u = g / (sqrt(nu_hat) + eps)``

    The state holds a step count only when ``bias_correction``. ``decay`` must
    be in [0, 1] ([0, 1) with bias correction, which divides by ``1-decay**t``).

    Reference: Hinton, "Neural Networks for Machine Learning", lecture 6e, 2012.
    """
    check_rms_hyperparameters(
        "scale_by_rms", decay, eps, initial_scale, bias_correction
    )
    inverse_root = _inverse_root(eps, eps_in_sqrt)

    def init(params):
        nu = _tree.full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRmsWithCountState(count=jnp.zeros([], jnp.int32), nu=nu)
        return ScaleByRmsState(nu=nu)

    def update(updates, state, params=None):
        del params
        nu = _tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count = _tree.safe_increment(state.count)
            nu_hat = _tree.bias_correction(nu, decay, count)
        else:
            nu_hat = nu
        scaling = jax.tree.map(inverse_root, nu_hat)
        updates = jax.tree.map(lambda s, g: s * g, scaling, updates)
        if bias_correction:
            return updates, ScaleByRmsWithCountState(count=count, nu=nu)
        return updates, ScaleByRmsState(nu=nu)

    return GradientTransformation(init, update)


class ScaleByRStdDevState(NamedTuple):
    """EMAs of the gradients ``mu`` and of their squares ``nu``."""

    mu: Any
    nu: Any


class ScaleByRStdDevWithCountState(NamedTuple):
    """``mu``, ``nu`` and the step count (bias correction)."""

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_stddev(
    decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True, bias_correction=False
) -> GradientTransformation:
    """Divide by a running standard deviation of the gradients (centred RMSProp).

    ``mu = decay * mu + (1 - decay) * g`` (``mu`` starts at 0)
    ``nu = decay * nu + (1 - decay) * g**2`` (``nu`` starts at ``initial_scale``)
    with ``bias_correction``: ``mu_hat = mu / (1 - decay**t)``,
    ``nu_hat = nu / (1 - decay**t)``, else ``mu_hat, nu_hat = mu, nu``
    ``u = g / sqrt(nu_hat - mu_hat**2 + eps)`` (``eps_in_sqrt``) or
    ``u = g / (sqrt(nu_hat - mu_hat**2) + eps)``

    Reference: Graves, "Generating Sequences With Recurrent Neural Networks",
    2013, https://arxiv.org/abs/1308.0850 (eq. 38-41).
    """
    check_rms_hyperparameters(
        "scale_by_stddev", decay, eps, initial_scale, bias_correction
    )
    inverse_root = _inverse_root(eps, eps_in_sqrt)

    def init(params):
        mu = _tree.zeros_like(params)
        nu = _tree.full_like(params, initial_scale)
        if bias_correction:
            return ScaleByRStdDevWithCountState(
                count=jnp.zeros([], jnp.int32), mu=mu, nu=nu
            )
        return ScaleByRStdDevState(mu=mu, nu=nu)

    def update(updates, state, params=None):
        del params
        mu = _tree.update_moment(updates, state.mu, decay, 1)
        nu = _tree.update_moment_per_elem_norm(updates, state.nu, decay, 2)
        if bias_correction:
            count = _tree.safe_increment(state.count)
            mu_hat = _tree.bias_correction(mu, decay, count)
            nu_hat = _tree.bias_correction(nu, decay, count)
        else:
            mu_hat, nu_hat = mu, nu
        scaling = jax.tree.map(
            lambda m, v: inverse_root(v - _tree.abs_sq(m)), mu_hat, nu_hat
        )
        updates = jax.tree.map(lambda s, g: s * g, scaling, updates)
        if bias_correction:
            return updates, ScaleByRStdDevWithCountState(count=count, mu=mu, nu=nu)
        return updates, ScaleByRStdDevState(mu=mu, nu=nu)

    return GradientTransformation(init, update)


class ScaleByAdamState(NamedTuple):
    """Adam's step count (int32) and moment estimates ``mu`` (m) and ``nu`` (v)."""

    count: jax.Array
    mu: Any
    nu: Any


def scale_by_adam(
    b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, mu_dtype=None, *, nesterov=False
) -> GradientTransformation:
    """Adam's rescaling (everything but the learning rate).

    ``m = b1 * m + (1 - b1) * g ; v = b2 * v + (1 - b2) * g**2``
    ``m_hat = m / (1 - b1**t) ; v_hat = v / (1 - b2**t)``
    ``u = m_hat / (sqrt(v_hat + eps_root) + eps)``
    With ``nesterov=True`` (NAdam) the first moment looks one step ahead:
    ``m_hat = b1 * m / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)``.

    ``m`` is stored in ``mu_dtype`` (default: the params' dtype).
    ``b1``, ``b2`` must be in [0, 1); ``eps``, ``eps_root`` >= 0.

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    ICLR 2015, https://arxiv.org/abs/1412.6980 (Algorithm 1);
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR workshop 2016.
    """
    check_adam_hyperparameters("scale_by_adam", b1, b2, eps, eps_root)
    if mu_dtype is not None:
        mu_dtype = jax.dtypes.canonicalize_dtype(mu_dtype)

    def init(params):
        return ScaleByAdamState(
            count=jnp.zeros([], jnp.int32),
            mu=_tree.zeros_like(params, dtype=mu_dtype),
            nu=_tree.zeros_like(params),
        )

    def update(updates, state, params=None):
        del params
        mu = _tree.update_moment(updates, state.mu, b1, 1)
        nu = _tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = _tree.safe_increment(state.count)
        if nesterov:
            mu_hat = jax.tree.map(
                lambda m, g: b1 * m + (1 - b1) * g,
                _tree.bias_correction(mu, b1, _tree.safe_increment(count)),
                _tree.bias_correction(updates, b1, count),
            )
        else:
            mu_hat = _tree.bias_correction(mu, b1, count)
        nu_hat = _tree.bias_correction(nu, b2, count)
        updates = jax.tree.map(
            lambda m, v: m / (jnp.sqrt(v + eps_root) + eps), mu_hat, nu_hat
        )
        mu = _tree.cast(mu, mu_dtype)
        nu = _tree.cast_like(nu, state.nu)
        return updates, ScaleByAdamState(count=count, mu=mu, nu=nu)

    return GradientTransformation(init, update)


# --- weight decay ------------------------------------------------------------


class WeightDecaySchedule(NamedTuple):
    """The step counter of a scheduled weight decay."""

    count: jax.Array


def add_decayed_weights(weight_decay=0.0, mask=None) -> GradientTransformation:
    """Add decoupled weight decay: ``u = g + weight_decay * p``.

    Placed after Adam's rescaling and before the learning rate, this is AdamW's
    decay, ``p <- p - lr * (adam_step + weight_decay * p)``. ``weight_decay``
    may be a schedule (the state then counts steps). ``mask`` (a pytree of
    bools, or a callable ``params -> pytree of bools``) restricts the decay to
    the ``True`` leaves, see :func:`masked`. Needs ``params`` in ``update``.

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019, https://arxiv.org/abs/1711.05101
    """
    check_non_negative("add_decayed_weights", "weight_decay", weight_decay)
    scheduled = callable(weight_decay)

    def init(params):
        del params
        if scheduled:
            return WeightDecaySchedule(count=jnp.zeros([], jnp.int32))
        return EmptyState()

    def update(updates, state, params=None):
        if params is None:
            raise ValueError(NO_PARAMS_MSG)
        if scheduled:
            new_state = WeightDecaySchedule(count=_tree.safe_increment(state.count))
            decay = weight_decay(state.count)
        else:
            new_state = state
            if isinstance(weight_decay, (int, float)) and weight_decay == 0.0:
                return updates, new_state
            decay = weight_decay
        updates = jax.tree.map(lambda g, p: g + _like(decay, g) * p, updates, params)
        return updates, new_state

    tx = GradientTransformation(init, update)
    return tx if mask is None else masked(tx, mask)
