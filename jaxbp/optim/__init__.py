"""Hand-rolled optimizers with optax's names, arguments and semantics.

No optax inside: every optimizer is a :func:`chain` of small
:class:`GradientTransformation` s (``init``/``update`` pairs of pure functions
over NamedTuple states), each a few lines long with its update equations in its
docstring. The protocol is optax's, so the two mix freely::

    from jaxbp import optim

    tx = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3))
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)
    params = optim.apply_updates(params, updates)

Learning rates may be numbers or schedules (functions of the step count).
Hyperparameters out of range raise ``ValueError`` at build time (tracers and
schedules are not checked).
"""

from ._aliases import adagrad, adam, adamw, rmsprop, sgd
from ._base import (
    EmptyState,
    GradientTransformation,
    apply_updates,
    chain,
    identity,
    init_empty_state,
)
from ._clipping import clip, clip_by_global_norm
from ._masking import MaskedNode, MaskedState, masked
from ._schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    join_schedules,
    linear_schedule,
    polynomial_schedule,
    warmup_cosine_decay_schedule,
)
from ._transforms import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByRmsWithCountState,
    ScaleByRssState,
    ScaleByRStdDevState,
    ScaleByRStdDevWithCountState,
    ScaleByScheduleState,
    TraceState,
    WeightDecaySchedule,
    add_decayed_weights,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_schedule,
    scale_by_stddev,
    trace,
)
from ._tree import global_norm, safe_increment

__all__ = [
    "EmptyState",
    "GradientTransformation",
    "MaskedNode",
    "MaskedState",
    "ScaleByAdamState",
    "ScaleByRStdDevState",
    "ScaleByRStdDevWithCountState",
    "ScaleByRmsState",
    "ScaleByRmsWithCountState",
    "ScaleByRssState",
    "ScaleByScheduleState",
    "TraceState",
    "WeightDecaySchedule",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "clip",
    "clip_by_global_norm",
    "constant_schedule",
    "cosine_decay_schedule",
    "exponential_decay",
    "global_norm",
    "identity",
    "init_empty_state",
    "join_schedules",
    "linear_schedule",
    "masked",
    "polynomial_schedule",
    "rmsprop",
    "safe_increment",
    "scale",
    "scale_by_adam",
    "scale_by_learning_rate",
    "scale_by_rms",
    "scale_by_rss",
    "scale_by_schedule",
    "scale_by_stddev",
    "sgd",
    "trace",
    "warmup_cosine_decay_schedule",
]
