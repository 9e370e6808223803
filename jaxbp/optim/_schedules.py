"""Learning-rate schedules: plain functions ``step count -> value``.

A schedule can be given wherever a learning rate is expected. The optimizer
keeps a step counter ``count`` (int32, starting at 0) and calls the schedule
with the count *before* incrementing it, so the first update uses
``schedule(0)``.

The arithmetic is optax's, dtype quirks included: on the int32 count,
``count / transition_steps`` is float32 in JAX even with x64 enabled (true
division of an int32), so the linear, polynomial and exponential schedules
return float32 values, while the cosine one (``pi * count``) returns the
default float dtype. The optimizer then casts the value to each update's dtype.
"""

import logging

import jax.numpy as jnp

from ._base import Schedule
from ._validation import check_positive

_logger = logging.getLogger(__name__)


def constant_schedule(value) -> Schedule:
    """``lr(t) = value``."""
    return lambda count: value


def polynomial_schedule(
    init_value, end_value, power, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """Polynomial interpolation from ``init_value`` to ``end_value``.

    ``s = clip(t - transition_begin, 0, transition_steps)``
    ``lr(t) = (init_value - end_value) * (1 - s/transition_steps)**power
    + end_value``

    ``transition_steps <= 0`` gives the constant ``init_value``; a negative
    ``transition_begin`` is treated as 0 (both as optax does, with a log line).
    """
    if transition_steps <= 0:
        _logger.info(
            "polynomial_schedule: transition_steps <= 0, the schedule is the "
            "constant init_value."
        )
        return lambda count: init_value
    if transition_begin < 0:
        _logger.info("polynomial_schedule: negative transition_begin, using 0.")
        transition_begin = 0

    def schedule(count):
        count = jnp.clip(count - transition_begin, 0, transition_steps)
        frac = 1 - count / transition_steps
        return (init_value - end_value) * (frac**power) + end_value

    return schedule


def linear_schedule(
    init_value, end_value, transition_steps: int, transition_begin: int = 0
) -> Schedule:
    """Linear interpolation from ``init_value`` to ``end_value``.

    ``s = clip(t - transition_begin, 0, transition_steps)``
    ``lr(t) = init_value + (end_value - init_value) * s / transition_steps``
    (computed as :func:`polynomial_schedule` with ``power=1``).
    """
    return polynomial_schedule(
        init_value=init_value,
        end_value=end_value,
        power=1,
        transition_steps=transition_steps,
        transition_begin=transition_begin,
    )


def exponential_decay(
    init_value,
    transition_steps: int,
    decay_rate: float,
    transition_begin: int = 0,
    staircase: bool = False,
    end_value=None,
) -> Schedule:
    """Exponential decay after ``transition_begin`` steps.

    ``p = (t - transition_begin) / transition_steps`` (``floor(p)`` if
    ``staircase``)
    ``lr(t) = init_value`` if ``t <= transition_begin`` else
    ``init_value * decay_rate**p``, then clipped at ``end_value`` (a lower bound
    when ``decay_rate < 1``, an upper bound otherwise).

    ``transition_steps <= 0`` or ``decay_rate == 0`` give the constant
    ``init_value``; a negative ``transition_begin`` is treated as 0 (as optax).
    """
    if transition_steps <= 0:
        _logger.info(
            "exponential_decay: transition_steps <= 0, the schedule is the "
            "constant init_value."
        )
        return lambda count: init_value
    if decay_rate == 0:
        _logger.info(
            "exponential_decay: decay_rate == 0, the schedule is the constant "
            "init_value."
        )
        return lambda count: init_value
    if transition_begin < 0:
        _logger.info("exponential_decay: negative transition_begin, using 0.")
        transition_begin = 0
    clip_fn = jnp.maximum if decay_rate < 1.0 else jnp.minimum

    def schedule(count):
        decreased_count = count - transition_begin
        p = decreased_count / transition_steps
        if staircase:
            p = jnp.floor(p)
        decayed = jnp.where(
            decreased_count <= 0, init_value, init_value * jnp.power(decay_rate, p)
        )
        if end_value is not None:
            decayed = clip_fn(decayed, end_value)
        return decayed

    return schedule


def cosine_decay_schedule(
    init_value, decay_steps: int, alpha=0.0, exponent=1.0
) -> Schedule:
    """Cosine decay from ``init_value`` to ``alpha * init_value``.

    ``s = min(t, decay_steps)``
    ``c = 0.5 * (1 + cos(pi * s / decay_steps))``
    ``lr(t) = init_value * ((1 - alpha) * c**exponent + alpha)``

    Reference: Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with
    Warm Restarts", ICLR 2017, https://arxiv.org/abs/1608.03983
    """
    check_positive("cosine_decay_schedule", "decay_steps", decay_steps)
    if isinstance(decay_steps, int):
        decay_steps = float(decay_steps)

    def schedule(count):
        if isinstance(count, int):
            count = float(count)
        count = jnp.minimum(count, decay_steps)
        cosine_decay = 0.5 * (1 + jnp.cos(jnp.pi * count / decay_steps))
        decayed = (1 - alpha) * cosine_decay**exponent + alpha
        return init_value * decayed

    return schedule


def join_schedules(schedules, boundaries) -> Schedule:
    """Run ``schedules[i]`` between ``boundaries[i-1]`` and ``boundaries[i]``.

    Each schedule sees the steps since its own start: after boundary ``b`` the
    next schedule is called with ``t - b``.
    """

    def schedule(step):
        output = schedules[0](step)
        for boundary, next_schedule in zip(boundaries, schedules[1:]):
            output = jnp.where(step < boundary, output, next_schedule(step - boundary))
        return output

    return schedule


def warmup_cosine_decay_schedule(
    init_value,
    peak_value,
    warmup_steps: int,
    decay_steps: int,
    end_value=0.0,
    exponent=1.0,
) -> Schedule:
    """Linear warmup to ``peak_value``, then cosine decay to ``end_value``.

    ``t < warmup_steps``: ``lr(t) = init_value + (peak_value - init_value) *
    t / warmup_steps``
    ``t >= warmup_steps``: ``lr(t) = cosine_decay_schedule(peak_value,
    decay_steps - warmup_steps, alpha=end_value/peak_value)(t - warmup_steps)``

    ``decay_steps`` counts the warmup too (the total length of the schedule).
    """
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    schedules = [
        linear_schedule(
            init_value=init_value, end_value=peak_value, transition_steps=warmup_steps
        ),
        cosine_decay_schedule(
            init_value=peak_value,
            decay_steps=decay_steps - warmup_steps,
            alpha=alpha,
            exponent=exponent,
        ),
    ]
    return join_schedules(schedules, [warmup_steps])
