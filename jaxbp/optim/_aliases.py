"""Ready-made optimizers, each a :func:`chain` of the small transforms.

They are built exactly as optax builds them, so their states have the same
layout (a tuple with one state per link of the chain) and their trajectories
agree with optax's to rounding.
"""

from ._base import GradientTransformation, chain, identity
from ._transforms import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_rss,
    scale_by_stddev,
    trace,
)
from ._validation import (
    check_adam_hyperparameters,
    check_learning_rate,
    check_non_negative,
    check_rms_hyperparameters,
    check_unit_interval,
)


def _check_momentum(where, momentum):
    # optax accepts any momentum. We accept [0, 1]: a negative momentum flips
    # the sign of past gradients, and above 1 old gradients grow without bound
    # (momentum == 1, a never-forgetting heavy ball, is allowed).
    check_unit_interval(where, "momentum", momentum, closed=True)


def sgd(
    learning_rate, momentum=None, nesterov=False, accumulator_dtype=None
) -> GradientTransformation:
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    plain:     ``u = -lr * g``
    momentum:  ``m = g + momentum * m ; u = -lr * m``
    Nesterov:  ``m = g + momentum * m ; u = -lr * (g + momentum * m)``

    ``m`` starts at 0, stored in ``accumulator_dtype`` (default: params' dtype).
    ``learning_rate`` >= 0 (or a schedule), ``momentum`` in [0, 1] or None.
    ``nesterov`` without momentum is ignored (as in optax).
    Built as ``chain(trace(momentum, nesterov), scale_by_learning_rate(lr))``.

    Reference: Sutskever et al., "On the importance of initialization and
    momentum in deep learning", ICML 2013.
    """
    check_learning_rate("sgd", learning_rate)
    _check_momentum("sgd", momentum)
    if momentum is None:
        first = identity()
    else:
        first = trace(
            decay=momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype
        )
    return chain(first, scale_by_learning_rate(learning_rate))


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7):
    """Adagrad: per-coordinate steps shrinking with the gradients seen so far.

    ``G = G + g**2`` (``G`` starts at ``initial_accumulator_value``)
    ``u = -lr * g / sqrt(G + eps)`` (``u = 0`` where ``G == 0``)

    Built as ``chain(scale_by_rss(...), scale_by_learning_rate(lr))``.

    Reference: Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online
    Learning and Stochastic Optimization", JMLR 2011.
    """
    check_learning_rate("adagrad", learning_rate)
    check_non_negative(
        "adagrad", "initial_accumulator_value", initial_accumulator_value
    )
    check_non_negative("adagrad", "eps", eps)
    return chain(
        scale_by_rss(initial_accumulator_value=initial_accumulator_value, eps=eps),
        scale_by_learning_rate(learning_rate),
    )


def rmsprop(
    learning_rate,
    decay=0.9,
    eps=1e-8,
    initial_scale=0.0,
    eps_in_sqrt=True,
    centered=False,
    momentum=None,
    nesterov=False,
    bias_correction=False,
) -> GradientTransformation:
    """RMSProp: divide by a running root-mean-square of the gradients.

    ``nu = decay * nu + (1 - decay) * g**2`` (``nu`` starts at ``initial_scale``)
    centered: also ``mu = decay * mu + (1 - decay) * g`` and use the variance
    ``nu - mu**2`` in place of ``nu`` below
    bias_correction: ``nu_hat = nu / (1 - decay**t)`` (and ``mu_hat`` likewise)
    ``s = -lr * g / sqrt(nu_hat + eps)`` (``eps_in_sqrt``, optax's default) or
    ``s = -lr * g / (sqrt(nu_hat) + eps)`` (PyTorch's)
    no momentum: ``u = s``
    momentum:    ``m = s + momentum * m ; u = m`` (Nesterov: ``u = s + momentum*m``)

    Note the momentum is applied *after* the learning rate (optax's order).
    ``decay`` in [0, 1] ([0, 1) with bias_correction), ``momentum`` in [0, 1].

    References: Hinton, "Neural Networks for Machine Learning", lecture 6e,
    2012; Graves, "Generating Sequences With Recurrent Neural Networks", 2013,
    https://arxiv.org/abs/1308.0850 (centred variant).
    """
    check_learning_rate("rmsprop", learning_rate)
    check_rms_hyperparameters("rmsprop", decay, eps, initial_scale, bias_correction)
    _check_momentum("rmsprop", momentum)
    scale_by = scale_by_stddev if centered else scale_by_rms
    return chain(
        scale_by(
            decay=decay,
            eps=eps,
            initial_scale=initial_scale,
            eps_in_sqrt=eps_in_sqrt,
            bias_correction=bias_correction,
        ),
        scale_by_learning_rate(learning_rate),
        identity() if momentum is None else trace(decay=momentum, nesterov=nesterov),
    )


def adam(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    *,
    nesterov=False,
) -> GradientTransformation:
    """Adam: momentum divided by a running RMS, both bias-corrected.

    ``m = b1 * m + (1 - b1) * g ; v = b2 * v + (1 - b2) * g**2``
    ``m_hat = m / (1 - b1**t) ; v_hat = v / (1 - b2**t)``
    ``u = -lr * m_hat / (sqrt(v_hat + eps_root) + eps)``
    ``nesterov=True`` (NAdam):
    ``m_hat = b1 * m / (1 - b1**(t+1)) + (1 - b1) * g / (1 - b1**t)``.

    ``b1``, ``b2`` in [0, 1); ``eps``, ``eps_root`` >= 0 (``eps_root`` > 0 keeps
    the square root differentiable at 0, for meta-gradients through Adam).
    Built as ``chain(scale_by_adam(...), scale_by_learning_rate(lr))``.

    References: Kingma & Ba, "Adam: A Method for Stochastic Optimization",
    ICLR 2015, https://arxiv.org/abs/1412.6980; Dozat, "Incorporating Nesterov
    Momentum into Adam", ICLR workshop 2016.
    """
    check_learning_rate("adam", learning_rate)
    check_adam_hyperparameters("adam", b1, b2, eps, eps_root)
    return chain(
        scale_by_adam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            mu_dtype=mu_dtype,
            nesterov=nesterov,
        ),
        scale_by_learning_rate(learning_rate),
    )


def adamw(
    learning_rate,
    b1=0.9,
    b2=0.999,
    eps=1e-8,
    eps_root=0.0,
    mu_dtype=None,
    weight_decay=1e-4,
    mask=None,
    *,
    nesterov=False,
) -> GradientTransformation:
    """AdamW: Adam with decoupled weight decay.

    ``m, v, m_hat, v_hat`` as in :func:`adam`
    ``u = -lr * (m_hat / (sqrt(v_hat + eps_root) + eps) + weight_decay * p)``

    The decay is multiplied by the learning rate (as in PyTorch and optax; the
    paper multiplies it by the schedule multiplier only). ``mask`` (pytree of
    bools or callable ``params -> pytree of bools``) selects the parameters to
    decay; Adam itself is applied to all. ``weight_decay`` >= 0 or a schedule.
    Built as ``chain(scale_by_adam(...), add_decayed_weights(weight_decay,
    mask), scale_by_learning_rate(lr))``.

    Reference: Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
    ICLR 2019, https://arxiv.org/abs/1711.05101
    """
    check_learning_rate("adamw", learning_rate)
    check_adam_hyperparameters("adamw", b1, b2, eps, eps_root)
    check_non_negative("adamw", "weight_decay", weight_decay)
    return chain(
        scale_by_adam(
            b1=b1,
            b2=b2,
            eps=eps,
            eps_root=eps_root,
            mu_dtype=mu_dtype,
            nesterov=nesterov,
        ),
        add_decayed_weights(weight_decay, mask),
        scale_by_learning_rate(learning_rate),
    )
