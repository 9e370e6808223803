"""The train step: L2 is the gradient of its penalty (and vmappable), clipping caps
the global norm, and bad optimizers or penalties are ValueErrors."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_rel_close

import jaxbp
from jaxbp import optim
from jaxbp.train import TrainState, make_optimizer, make_step


def one_sgd_step(model, params, state, x, target, clip_norm=None, **kwargs):
    """(loss, gradient) the step used, recovered from one SGD step with lr 1."""
    tx = make_optimizer(optim.sgd(1.0), clip_norm=clip_norm)
    step = make_step(model, loss="cross_entropy", optimizer=tx, **kwargs)
    train_state = TrainState(params, state, tx.init(params))
    new, value = jax.jit(step)(train_state, x, target, None)
    grads = jax.tree.map(lambda p, q: p - q, params, new.params)
    return value, grads


def test_l2_can_be_vmapped(problem64):
    """L2 strengths as a traced array: one vmapped step per strength equals the
    steps built with each strength as a Python number."""
    model, params, state, x, _, target = problem64
    lams = jnp.array([0.0, 0.3, 1.0])
    vmapped = jax.vmap(
        lambda lam: one_sgd_step(model, params, state, x, target, l2=lam)
    )(lams)
    for i, lam in enumerate([0.0, 0.3, 1.0]):
        want = one_sgd_step(model, params, state, x, target, l2=lam)
        got = jax.tree.map(lambda a, i=i: a[i], vmapped)
        assert_trees_rel_close(got, want, rtol=1e-12)
    assert not np.allclose(vmapped[0][0], vmapped[0][1])  # the penalty is there


def test_l2_is_the_gradient_of_the_penalty(problem64):
    model, params, state, x, y, target = problem64
    lam = 0.3
    value, grads = one_sgd_step(model, params, state, x, target, l2=lam)

    def objective(p):
        data_loss = jaxbp.loss(model, p, x, y, loss="cross_entropy")
        weights = [p[0]["w"], p[2]["w"]]  # the two dense kernels, not the biases
        return data_loss + 0.5 * lam * sum(jnp.sum(w**2) for w in weights)

    want_value, want_grads = jax.jit(jax.value_and_grad(objective))(params)
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    assert_trees_rel_close(grads, want_grads, rtol=1e-10)
    # biases are not penalised: their gradient is the data loss's alone
    _, plain = one_sgd_step(model, params, state, x, target)
    np.testing.assert_allclose(grads[0]["b"], plain[0]["b"], rtol=1e-12)
    assert not np.allclose(grads[0]["w"], plain[0]["w"])


@pytest.mark.parametrize("no_penalty", [0, 0.0, None])
def test_a_python_zero_leaves_the_penalty_out_of_the_program(problem64, no_penalty):
    model, params, state, x, _, target = problem64
    tx = optim.sgd(1.0)
    train_state = TrainState(params, state, tx.init(params))

    def program(l2):
        step = make_step(model, optimizer=tx, l2=l2)
        return str(jax.make_jaxpr(step)(train_state, x, target, None))

    squares = len(re.findall(r"integer_pow|square", program(no_penalty)))
    assert squares < len(re.findall(r"integer_pow|square", program(0.5)))


def test_clipping_caps_the_global_norm_and_keeps_the_direction(problem64):
    model, params, state, x, _, target = problem64
    _, plain = one_sgd_step(model, params, state, x, target)
    norm = float(optim.global_norm(plain))
    _, clipped = one_sgd_step(model, params, state, x, target, clip_norm=norm / 4)
    np.testing.assert_allclose(optim.global_norm(clipped), norm / 4, rtol=1e-12)
    assert_trees_rel_close(clipped, jax.tree.map(lambda g: g / 4, plain), rtol=1e-12)
    _, unclipped = one_sgd_step(model, params, state, x, target, clip_norm=norm * 2)
    assert_trees_rel_close(unclipped, plain, rtol=1e-12)


def test_bad_step_arguments_are_value_errors(problem64):
    model = problem64[0]
    cases = [
        ({"optimizer": "adam"}, "GradientTransformation"),
        ({"optimizer": optim.sgd(0.1), "l2": -1.0}, "l2"),
        ({"optimizer": optim.sgd(0.1), "l2": float("nan")}, "l2"),
        ({"optimizer": optim.sgd(0.1), "l2": "0.1"}, "l2"),
        ({"optimizer": optim.sgd(0.1), "backprop": "numeric"}, "manual, autodiff"),
        ({"optimizer": optim.sgd(0.1), "loss": "l1"}, "loss"),
    ]
    for kwargs, fragment in cases:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            make_step(model, **kwargs)
    with pytest.raises(ValueError, match="clip_norm"):
        make_optimizer(optim.sgd(0.1), clip_norm=0.0)
    with pytest.raises(ValueError, match="GradientTransformation"):
        make_optimizer(optim.sgd, clip_norm=1.0)
