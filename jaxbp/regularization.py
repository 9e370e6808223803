"""L2 regularization by hand: the penalty ½λΣ‖W‖² and its gradient λW.

Only weight matrices and kernels are penalised, not biases or normalisation
parameters (scales and shifts). The rule is the leaf's rank: a parameter with
two or more axes (a dense layer's ``w``, a convolution kernel, a recurrent
weight matrix) is a weight; a vector (a bias, batch norm's ``gamma``/``beta``)
is not. :func:`l2_mask` shows the choice for any parameter tree.

With ``λ = l2`` (the ``l2=`` of ``jaxbp.train.fit``, ``sweep`` and ``make_step``)::

    penalty  R(θ) = ½ λ Σ_W ‖W‖²        (sum of squares of every weight entry)
    gradient dR/dW = λ W ;  dR/db = 0

so training on ``L + R`` adds ``λ W`` to each weight gradient (``dW += λW``),
which for plain SGD is the classic "weight decay" ``W ← (1 − ηλ) W − η dL/dW``.
For adaptive optimizers such as Adam, L2 in the gradient is not the same as
decoupled weight decay (the gradient term is rescaled with the rest); jaxbp
keeps the name ``weight_decay`` for the decoupled kind only (``optim.adamw``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def is_weight(leaf) -> bool:
    """Whether a parameter leaf is a weight matrix / kernel (two or more axes)."""
    return jnp.ndim(leaf) >= 2


def l2_mask(params):
    """A tree of bools with the structure of ``params``: True where L2 applies."""
    return jax.tree.map(is_weight, params)


def l2_penalty(params, l2):
    """R = ½ λ Σ_W ‖W‖² over the weight leaves (λ = ``l2``), in the parameters' dtype.

    ``l2`` may be a Python number or an array (it is cast to the
    dtype of the weights, so float32 models stay float32 with x64 enabled).
    """
    weights = [w for w in jax.tree.leaves(params) if is_weight(w)]
    if not weights:
        return jnp.zeros((), jnp.result_type(*jax.tree.leaves(params) or [0.0]))
    dtype = jnp.result_type(*weights)
    total = sum(jnp.sum(jnp.square(w)) for w in weights)
    return (0.5 * jnp.asarray(l2, dtype) * total).astype(dtype)


def add_l2_grad(grads, params, l2):
    """dW += λ W (λ = ``l2``) for every weight leaf; other gradients unchanged.

    The gradient of :func:`l2_penalty`, added to ``grads`` (same structure as
    ``params``).
    """

    def add(g, p):
        if not is_weight(p):
            return g
        return g + jnp.asarray(l2, g.dtype) * p.astype(g.dtype)

    return jax.tree.map(add, grads, params)
