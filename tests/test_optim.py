"""jaxbp.optim against optax: same trajectories, dtypes, schedules, and mixing.

Every optimizer is built twice from the same recipe, once from ``jaxbp.optim``
and once from ``optax`` (the names and arguments are the same), and driven for
200 steps on a small float64 problem from the same start.
"""

import ast
import functools
import operator
import pathlib
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxbp import optim

N_STEPS = 200
RTOL = 1e-9
ATOL = 1e-12


# --- a small problem: least squares plus smooth nonlinear terms ---------------


def _data(dtype):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(6, 3)), dtype=dtype)
    y = jnp.asarray(rng.normal(size=(6, 4)), dtype=dtype)
    params = {
        "w": jnp.asarray(rng.normal(size=(3, 4)), dtype=dtype),
        "b": jnp.asarray(rng.normal(size=(4,)), dtype=dtype),
    }
    return x, y, params


def _loss(params, x, y):
    pred = jnp.tanh(x @ params["w"]) + params["b"]
    quadratic = 0.5 * jnp.mean((pred - y) ** 2)
    nonlinear = 0.1 * jnp.sum(jnp.log(jnp.cosh(params["w"]))) + 0.05 * jnp.sum(
        jnp.sin(params["b"])
    )
    return quadratic + nonlinear


@pytest.fixture(scope="module")
def problem64():
    x, y, params = _data(jnp.float64)
    grad_fn = jax.jit(jax.grad(lambda p: _loss(p, x, y)))
    return params, grad_fn


@pytest.fixture(scope="module")
def problem32():
    x, y, params = _data(jnp.float32)
    grad_fn = jax.jit(jax.grad(lambda p: _loss(p, x, y)))
    return params, grad_fn


_apply_ours = jax.jit(optim.apply_updates)
_apply_optax = jax.jit(optax.apply_updates)


def run(tx, params, grad_fn, n_steps=N_STEPS, apply=_apply_ours):
    """Drive ``tx`` for ``n_steps``; return the stacked trajectory, final state.

    ``tx.update`` runs op by op (eager); only the loss gradient and the
    parameter update ``p + u`` are jitted, to keep the test fast.
    """
    state = tx.init(params)
    trajectory = []
    for _ in range(n_steps):
        updates, state = tx.update(grad_fn(params), state, params)
        params = apply(params, updates)
        trajectory.append(params)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trajectory), state


def assert_same_run(ours, theirs, problem, n_steps=N_STEPS):
    params, grad_fn = problem
    traj_ours, state_ours = run(ours, params, grad_fn, n_steps)
    traj_theirs, state_theirs = run(theirs, params, grad_fn, n_steps, _apply_optax)
    chex.assert_trees_all_close(traj_ours, traj_theirs, rtol=RTOL, atol=ATOL)
    # Same state layout (leaf order, shapes, dtypes, int32 counts) and values.
    leaves_ours = jax.tree.leaves(state_ours)
    leaves_theirs = jax.tree.leaves(state_theirs)
    assert len(leaves_ours) == len(leaves_theirs)
    for a, b in zip(leaves_ours, leaves_theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
    chex.assert_trees_all_close(leaves_ours, leaves_theirs, rtol=RTOL, atol=ATOL)
    # The problem is not trivial: parameters actually moved.
    moved = jax.tree.map(lambda t, p: jnp.max(jnp.abs(t[-1] - p)), traj_ours, params)
    assert max(float(m) for m in jax.tree.leaves(moved)) > 1e-3


# --- recipes: each is applied to both libraries (``o`` is optim or optax) -----


def _mask_fn(params):
    return jax.tree.map(lambda p: p.ndim > 1, params)


RECIPES = {
    # sgd
    "sgd": lambda o: o.sgd(0.05),
    "sgd_momentum": lambda o: o.sgd(0.02, momentum=0.9),
    "sgd_nesterov": lambda o: o.sgd(0.02, momentum=0.9, nesterov=True),
    "sgd_momentum_f32_accumulator": lambda o: o.sgd(
        0.02, momentum=0.5, accumulator_dtype=jnp.float32
    ),
    # adagrad
    "adagrad": lambda o: o.adagrad(0.1),
    "adagrad_zero_init": lambda o: o.adagrad(
        0.1, initial_accumulator_value=0.0, eps=1e-6
    ),
    # rmsprop
    "rmsprop": lambda o: o.rmsprop(0.01),
    "rmsprop_centered": lambda o: o.rmsprop(0.01, centered=True),
    "rmsprop_momentum": lambda o: o.rmsprop(0.005, momentum=0.9),
    "rmsprop_nesterov": lambda o: o.rmsprop(0.005, momentum=0.9, nesterov=True),
    "rmsprop_initial_scale": lambda o: o.rmsprop(0.01, initial_scale=1.0),
    "rmsprop_eps_outside_sqrt": lambda o: o.rmsprop(0.01, eps_in_sqrt=False),
    "rmsprop_bias_correction": lambda o: o.rmsprop(
        0.01, decay=0.95, bias_correction=True
    ),
    "rmsprop_everything": lambda o: o.rmsprop(
        0.005,
        decay=0.8,
        eps=1e-6,
        initial_scale=0.5,
        eps_in_sqrt=False,
        centered=True,
        momentum=0.5,
        nesterov=True,
        bias_correction=True,
    ),
    # adam
    "adam": lambda o: o.adam(0.01),
    "adam_eps_root": lambda o: o.adam(0.02, b1=0.5, b2=0.9, eps=1e-4, eps_root=1e-8),
    "adam_nesterov": lambda o: o.adam(0.01, nesterov=True),
    "adam_mu_f32": lambda o: o.adam(0.01, mu_dtype=jnp.float32),
    # adamw
    "adamw": lambda o: o.adamw(0.01, weight_decay=0.1),
    "adamw_nesterov_mask_tree": lambda o: o.adamw(
        0.01, weight_decay=0.5, mask={"w": True, "b": False}, nesterov=True
    ),
    "adamw_mask_callable": lambda o: o.adamw(0.01, weight_decay=0.5, mask=_mask_fn),
    "adamw_scheduled_decay": lambda o: o.adamw(
        0.01, weight_decay=o.linear_schedule(0.5, 0.0, 150)
    ),
    # clipping and chains
    "clip": lambda o: o.chain(o.clip(0.05), o.sgd(0.1)),
    "clip_by_global_norm": lambda o: o.chain(o.clip_by_global_norm(0.3), o.sgd(0.1)),
    "chain_of_pieces": lambda o: o.chain(
        o.clip(0.5),
        o.scale_by_rms(decay=0.9),
        o.trace(decay=0.5, nesterov=True),
        o.scale(-0.002),
    ),
    "chain_decay_adam_schedule": lambda o: o.chain(
        o.clip_by_global_norm(1.0),
        o.scale_by_adam(b1=0.8),
        o.add_decayed_weights(1e-2, mask=_mask_fn),
        o.scale_by_learning_rate(o.exponential_decay(0.02, 10, 0.9)),
    ),
    "masked_prefix": lambda o: o.chain(
        o.masked(o.scale_by_adam(), True), o.scale(-0.01)
    ),
    "masked_partial": lambda o: o.chain(
        o.masked(o.scale_by_stddev(), {"w": False, "b": True}), o.scale(-0.01)
    ),
    "nested_chain": lambda o: o.chain(
        o.chain(o.clip(1.0), o.identity()), o.adagrad(0.1)
    ),
    "scale_by_schedule": lambda o: o.chain(
        o.scale_by_rss(), o.scale_by_schedule(lambda c: -0.1 / (1.0 + c))
    ),
    # schedules as learning rates
    "sgd_exponential_decay": lambda o: o.sgd(
        o.exponential_decay(0.1, transition_steps=20, decay_rate=0.5), momentum=0.5
    ),
    "sgd_staircase": lambda o: o.sgd(
        o.exponential_decay(0.1, 25, 0.5, transition_begin=10, staircase=True)
    ),
    "adam_warmup_cosine": lambda o: o.adam(
        o.warmup_cosine_decay_schedule(0.0, 0.05, 20, 180, end_value=1e-3)
    ),
    "adagrad_cosine": lambda o: o.adagrad(o.cosine_decay_schedule(0.1, 150, 0.1)),
    "rmsprop_linear": lambda o: o.rmsprop(o.linear_schedule(0.02, 0.001, 100, 20)),
    "rmsprop_momentum_schedule": lambda o: o.rmsprop(
        o.cosine_decay_schedule(0.01, 100, exponent=2.0), momentum=0.8, centered=True
    ),
    "adamw_joined": lambda o: o.adamw(
        o.join_schedules(
            [o.constant_schedule(0.02), o.linear_schedule(0.01, 0.0, 100)], [50]
        ),
        weight_decay=0.05,
    ),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_trajectory_matches_optax(name, problem64):
    recipe = RECIPES[name]
    assert_same_run(recipe(optim), recipe(optax), problem64)


# --- float32 ------------------------------------------------------------------


F32_RECIPES = [
    "sgd_nesterov",
    "adagrad",
    "rmsprop_everything",
    "adam_nesterov",
    "adamw_mask_callable",
    "adam_warmup_cosine",
]


def _float_leaves(tree):
    return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


@pytest.mark.parametrize("name", F32_RECIPES)
def test_float32_matches_optax_and_stays_float32(name, problem32):
    params, grad_fn = problem32
    ours, theirs = RECIPES[name](optim), RECIPES[name](optax)
    state_ours, state_theirs = ours.init(params), theirs.init(params)
    for _ in range(3):
        grads = grad_fn(params)
        updates, state_ours = ours.update(grads, state_ours, params)
        expected, state_theirs = theirs.update(grads, state_theirs, params)
        chex.assert_trees_all_close(updates, expected, rtol=1e-5, atol=1e-7)
        for leaf in _float_leaves((updates, state_ours)):
            assert leaf.dtype == jnp.float32
        params = optim.apply_updates(params, updates)
    for leaf in jax.tree.leaves(state_ours):
        assert leaf.dtype in (jnp.float32, jnp.int32)
    chex.assert_trees_all_close(
        jax.tree.leaves(state_ours), jax.tree.leaves(state_theirs), rtol=1e-5
    )


def test_float64_hyperparameters_keep_float32_updates(problem32):
    # A deliberate difference from optax: optax computes ``lr * g`` and
    # ``g + wd * p`` with the float64 scalars and returns float64 updates for
    # float32 params; jaxbp casts such scalars to the update's dtype first.
    params, grad_fn = problem32
    lr, wd = jnp.asarray(0.01, jnp.float64), jnp.asarray(0.1, jnp.float64)
    ours, theirs = optim.adamw(lr, weight_decay=wd), optax.adamw(lr, weight_decay=wd)
    grads = grad_fn(params)
    updates, state = ours.update(grads, ours.init(params), params)
    expected, _ = theirs.update(grads, theirs.init(params), params)
    for leaf in _float_leaves((updates, state)):
        assert leaf.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(expected))
    chex.assert_trees_all_close(updates, expected, rtol=1e-5)


# --- mixing jaxbp and optax -----------------------------------------------------


def test_jaxbp_transform_inside_optax_chain(problem64):
    mixed = optax.chain(optim.clip_by_global_norm(1.0), optax.adam(1e-3))
    pure = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    assert_same_run(mixed, pure, problem64, n_steps=50)


def test_optax_transform_inside_jaxbp_chain(problem64):
    mixed = optim.chain(optax.clip_by_global_norm(1.0), optim.adam(1e-3))
    pure = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    assert_same_run(mixed, pure, problem64, n_steps=50)


def test_mixed_masks_and_nesting(problem64):
    mixed = optax.chain(
        optim.chain(optax.clip(0.5), optim.scale_by_adam()),
        optax.masked(optim.add_decayed_weights(0.1), _mask_fn),
        optim.masked(optax.scale_by_learning_rate(0.01), {"w": True, "b": True}),
    )
    pure = optax.chain(
        optax.chain(optax.clip(0.5), optax.scale_by_adam()),
        optax.add_decayed_weights(0.1, _mask_fn),
        optax.masked(optax.scale_by_learning_rate(0.01), {"w": True, "b": True}),
    )
    assert_same_run(mixed, pure, problem64, n_steps=50)


def test_chain_forwards_extra_args_only_where_accepted(problem64):
    params, grad_fn = problem64
    seen = {}

    def update_with_extra(updates, state, params=None, **extra_args):
        seen.update(extra_args)
        return updates, state

    recorder = optim.GradientTransformation(optim.init_empty_state, update_with_extra)
    tx = optim.chain(
        optim.scale(2.0), recorder, optax.polyak_sgd(max_learning_rate=1.0)
    )
    state = tx.init(params)
    grads = grad_fn(params)
    updates, _ = tx.update(grads, state, params, value=jnp.asarray(0.5))
    assert set(seen) == {"value"}
    pure = optax.chain(optax.scale(2.0), optax.polyak_sgd(max_learning_rate=1.0))
    expected, _ = pure.update(grads, pure.init(params), params, value=jnp.asarray(0.5))
    chex.assert_trees_all_close(updates, expected, rtol=RTOL)


# --- jit and vmap ---------------------------------------------------------------


def _jit_run(tx, params, grad_fn, n_steps=20):
    update = jax.jit(tx.update)
    state = tx.init(params)
    for _ in range(n_steps):
        updates, state = update(grad_fn(params), state, params)
        params = optim.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize(
    "name", ["sgd_nesterov", "rmsprop_everything", "adamw_mask_callable", "adam_mu_f32"]
)
def test_update_under_jit_matches_eager(name, problem64):
    params, grad_fn = problem64
    tx = RECIPES[name](optim)
    p_jit, state_jit = _jit_run(tx, params, grad_fn)
    traj, state_eager = run(tx, params, grad_fn, n_steps=20)
    chex.assert_trees_all_close(
        p_jit, jax.tree.map(lambda t: t[-1], traj), rtol=RTOL, atol=ATOL
    )
    chex.assert_trees_all_close(state_jit, state_eager, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["adam_warmup_cosine", "chain_decay_adam_schedule"])
def test_update_under_jit_matches_optax_under_jit(name, problem64):
    # Schedules evaluated on an int32 count return float32 (``int32 / int`` is
    # float32 in JAX, even with x64), and XLA rounds that float32 arithmetic
    # differently under jit than op by op: jit vs eager then differ at ~1e-9,
    # in optax exactly as here. Jitted vs jitted agree.
    params, grad_fn = problem64
    p_ours, state_ours = _jit_run(RECIPES[name](optim), params, grad_fn)
    p_theirs, state_theirs = _jit_run(RECIPES[name](optax), params, grad_fn)
    chex.assert_trees_all_close(p_ours, p_theirs, rtol=RTOL, atol=ATOL)
    chex.assert_trees_all_close(
        jax.tree.leaves(state_ours), jax.tree.leaves(state_theirs), rtol=RTOL, atol=ATOL
    )


def _train(make_tx, params, grad_fn, n_steps=5):
    tx = make_tx()
    state = tx.init(params)
    for _ in range(n_steps):
        updates, state = tx.update(grad_fn(params), state, params)
        params = optim.apply_updates(params, updates)
    return params


VMAP_RECIPES = {
    "adam": lambda o, lr: o.adam(lr),
    "adamw": lambda o, lr: o.adamw(lr, b1=lr * 5, weight_decay=lr, mask=_mask_fn),
    "sgd": lambda o, lr: o.sgd(lr, momentum=0.5 + 5 * lr, nesterov=True),
    "clip": lambda o, lr: o.chain(o.clip_by_global_norm(lr * 10), o.sgd(lr)),
    "schedule": lambda o, lr: o.sgd(o.linear_schedule(lr, 0.0, 10)),
}


@pytest.mark.parametrize("name", sorted(VMAP_RECIPES))
def test_vmap_over_learning_rates(name, problem64):
    # The optimizer is built inside the vmapped function from a traced lr (and
    # other hyperparameters derived from it): validation must let tracers by.
    params, grad_fn = problem64
    recipe = VMAP_RECIPES[name]
    lrs = jnp.asarray([1e-3, 5e-2], dtype=jnp.float64)
    batched = jax.vmap(lambda lr: _train(lambda: recipe(optim, lr), params, grad_fn))(
        lrs
    )
    for i, lr in enumerate(lrs):
        row = jax.tree.map(operator.itemgetter(i), batched)
        for lib in (optim, optax):
            single = _train(functools.partial(recipe, lib, lr), params, grad_fn)
            chex.assert_trees_all_close(row, single, rtol=RTOL, atol=ATOL)


def test_jit_with_traced_learning_rate(problem64):
    params, grad_fn = problem64
    run_jit = jax.jit(lambda lr: _train(lambda: optim.adam(lr), params, grad_fn))
    chex.assert_trees_all_close(
        run_jit(jnp.asarray(0.01)),
        _train(lambda: optim.adam(0.01), params, grad_fn),
        rtol=RTOL,
    )


# --- schedules --------------------------------------------------------------------

SCHEDULES = {
    "constant": lambda o: o.constant_schedule(0.3),
    "linear": lambda o: o.linear_schedule(1.0, 0.1, 100),
    "linear_begin": lambda o: o.linear_schedule(0.0, 2.0, 50, transition_begin=30),
    "linear_no_steps": lambda o: o.linear_schedule(0.7, 0.1, 0),
    "polynomial": lambda o: o.polynomial_schedule(1.0, 0.01, 2, 120, 10),
    "exponential": lambda o: o.exponential_decay(1.0, 10, 0.9),
    "exponential_staircase": lambda o: o.exponential_decay(
        0.5, 7, 0.5, transition_begin=13, staircase=True
    ),
    "exponential_end_low": lambda o: o.exponential_decay(1.0, 5, 0.5, end_value=0.1),
    "exponential_end_high": lambda o: o.exponential_decay(0.1, 5, 1.5, end_value=2.0),
    "exponential_negative_begin": lambda o: o.exponential_decay(1.0, 5, 0.5, -3),
    "exponential_no_steps": lambda o: o.exponential_decay(1.0, 0, 0.5),
    "exponential_zero_rate": lambda o: o.exponential_decay(1.0, 10, 0.0),
    "cosine": lambda o: o.cosine_decay_schedule(1.0, 200),
    "cosine_alpha_exponent": lambda o: o.cosine_decay_schedule(
        0.5, 150, alpha=0.2, exponent=3.0
    ),
    "warmup_cosine": lambda o: o.warmup_cosine_decay_schedule(0.0, 1.0, 25, 250),
    "warmup_cosine_end": lambda o: o.warmup_cosine_decay_schedule(
        0.1, 1.0, 10, 100, end_value=0.05, exponent=0.5
    ),
    "join": lambda o: o.join_schedules(
        [
            o.linear_schedule(0.0, 1.0, 20),
            o.constant_schedule(1.0),
            o.exponential_decay(1.0, 10, 0.8),
        ],
        [20, 60],
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_matches_optax(name):
    ours, theirs = SCHEDULES[name](optim), SCHEDULES[name](optax)
    counts = jnp.arange(0, 320, dtype=jnp.int32)
    np.testing.assert_allclose(
        np.broadcast_to(ours(counts), counts.shape),
        np.broadcast_to(theirs(counts), counts.shape),
        rtol=1e-12,
        atol=1e-15,
    )
    for count in [0, 1, 7, 25, 99, 100, 101, 250, 10_000]:
        np.testing.assert_allclose(ours(count), theirs(count), rtol=1e-12, atol=1e-15)
        c32 = jnp.asarray(count, jnp.int32)
        np.testing.assert_allclose(ours(c32), theirs(c32), rtol=1e-12, atol=1e-15)


def test_schedule_uses_count_before_increment(problem64):
    params, grad_fn = problem64
    seen = []
    tx = optim.sgd(lambda count: (seen.append(int(count)), 0.1)[1])
    state = tx.init(params)
    for _ in range(3):
        _, state = tx.update(grad_fn(params), state, params)
    assert seen == [0, 1, 2]
    assert state[1].count.dtype == jnp.int32 and int(state[1].count) == 3


# --- validation -------------------------------------------------------------------

INVALID = [
    (lambda: optim.sgd(-0.1), "sgd: learning_rate must be a number >= 0"),
    (lambda: optim.sgd(0.1, momentum=-0.5), r"sgd: momentum must be in \[0, 1\]"),
    (lambda: optim.sgd(0.1, momentum=1.5), r"momentum=1\.5"),
    (lambda: optim.adagrad(-1.0), "adagrad: learning_rate"),
    (
        lambda: optim.adagrad(0.1, initial_accumulator_value=-1.0),
        "initial_accumulator_value must be a number >= 0",
    ),
    (lambda: optim.adagrad(0.1, eps=-1e-7), "adagrad: eps must be"),
    (lambda: optim.rmsprop(-0.01), "rmsprop: learning_rate"),
    (lambda: optim.rmsprop(0.01, decay=1.5), r"rmsprop: decay must be in \[0, 1\]"),
    (lambda: optim.rmsprop(0.01, decay=-0.1), r"decay=-0\.1"),
    (
        lambda: optim.rmsprop(0.01, decay=1.0, bias_correction=True),
        r"rmsprop: decay must be in \[0, 1\)",
    ),
    (lambda: optim.rmsprop(0.01, eps=-1.0), "rmsprop: eps must be a number >= 0"),
    (lambda: optim.rmsprop(0.01, initial_scale=-1.0), "initial_scale must be"),
    (lambda: optim.rmsprop(0.01, momentum=-0.9), "rmsprop: momentum"),
    (lambda: optim.adam(-1e-3), r"adam: learning_rate must be a number >= 0, got"),
    (lambda: optim.adam(1e-3, b1=1.0), r"adam: b1 must be in \[0, 1\), got b1=1\.0"),
    (lambda: optim.adam(1e-3, b1=-0.1), r"adam: b1 must be in \[0, 1\)"),
    (lambda: optim.adam(1e-3, b2=1.0), r"adam: b2 must be in \[0, 1\)"),
    (lambda: optim.adam(1e-3, eps=-1e-8), "adam: eps must be a number >= 0"),
    (lambda: optim.adam(1e-3, eps_root=-1e-8), "adam: eps_root must be"),
    (lambda: optim.adamw(1e-3, weight_decay=-1e-4), "adamw: weight_decay must be"),
    (lambda: optim.adamw(1e-3, b2=2.0), r"adamw: b2 must be in \[0, 1\)"),
    (lambda: optim.adamw(-1e-3), "adamw: learning_rate"),
    (lambda: optim.clip(0.0), r"clip: max_delta must be a number > 0, got max_delta"),
    (lambda: optim.clip(-1.0), "clip: max_delta"),
    (lambda: optim.clip_by_global_norm(0.0), "clip_by_global_norm: max_norm must be"),
    (lambda: optim.clip_by_global_norm(-2), "max_norm=-2"),
    (lambda: optim.scale_by_learning_rate(-1.0), "scale_by_learning_rate"),
    (lambda: optim.trace(decay=2.0), r"trace: decay must be in \[0, 1\]"),
    (lambda: optim.scale_by_adam(b1=1.0), "scale_by_adam: b1"),
    (lambda: optim.scale_by_rms(decay=2.0), "scale_by_rms: decay"),
    (lambda: optim.scale_by_stddev(eps=-1.0), "scale_by_stddev: eps"),
    (lambda: optim.scale_by_rss(eps=-1.0), "scale_by_rss: eps"),
    (lambda: optim.add_decayed_weights(-0.1), "add_decayed_weights: weight_decay"),
    (lambda: optim.cosine_decay_schedule(1.0, 0), "decay_steps must be a number > 0"),
    # NumPy scalars, NaN and concrete jax arrays are checked too.
    (lambda: optim.sgd(np.float32(-0.1)), "learning_rate"),
    (lambda: optim.sgd(float("nan")), "got learning_rate=nan"),
    (lambda: optim.adam(jnp.asarray(-1e-3)), "adam: learning_rate"),
    (lambda: optim.adam(1e-3, b1=np.asarray(1.0)), "b1"),
]


@pytest.mark.parametrize("build, match", INVALID)
def test_invalid_hyperparameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_edge_values_are_accepted():
    optim.sgd(0.0, momentum=0.0)
    optim.sgd(0.1, momentum=1.0)
    optim.adam(0.1, b1=0.0, b2=0.0, eps=0.0)
    optim.rmsprop(0.1, decay=1.0)
    optim.rmsprop(0.1, decay=0.0, bias_correction=True)
    optim.adamw(0.1, weight_decay=0.0)


def test_schedules_and_tracers_are_not_checked(problem64):
    def never_call(count):
        raise AssertionError("a schedule must not be called when building")

    optim.adam(never_call)
    optim.adamw(never_call, weight_decay=never_call)
    optim.sgd(never_call, momentum=0.9)
    # A traced learning rate cannot be checked (its value is unknown when the
    # optimizer is built inside jit/vmap): it is let through, even if negative.
    params, _ = problem64

    def one_step(lr):
        tx = optim.adamw(lr, b1=lr, weight_decay=lr)
        return tx.update(params, tx.init(params), params)[0]

    updates = jax.jit(one_step)(-0.5)
    expected = optax.adamw(-0.5, b1=-0.5, weight_decay=-0.5).update(
        params, optax.adamw(-0.5).init(params), params
    )[0]
    chex.assert_trees_all_close(updates, expected, rtol=RTOL)


def test_add_decayed_weights_needs_params():
    tx = optim.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="params"):
        tx.update({"w": jnp.ones(2)}, tx.init({"w": jnp.ones(2)}))


def test_chain_rejects_a_foreign_state():
    tx = optim.chain(optim.clip(1.0), optim.sgd(0.1))
    with pytest.raises(ValueError, match="chain: expected a state with 2 entries"):
        tx.update({"w": jnp.ones(2)}, (), None)


# --- no optax inside ----------------------------------------------------------------


def test_optim_package_does_not_import_optax():
    package = pathlib.Path(optim.__file__).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) >= 5
    for source in sources:
        text = source.read_text()
        assert not re.search(r"^\s*(import|from)\s+optax\b", text, re.MULTILINE), source
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "optax" for n in names), source
        assert "__import__" not in text and "importlib" not in text, source
