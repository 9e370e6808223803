"""The one loop: run_steps is the step scanned over given batches, and an epoch of
make_epoch is run_steps over that epoch's batches, bit for bit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import backprop, optim
from jaxbp.train import (
    TrainState,
    epoch_batches,
    make_epoch,
    make_step,
    run_steps,
    train_keys,
)


@pytest.fixture(scope="module")
def setup(blobs):
    """(step, train_state, x, t, train_key): a dropout MLP on the blobs."""
    model = jaxbp.mlp([2, 8, 3], dropout=0.2)
    init_key, train_key = train_keys(jax.random.key(0))
    params, state = model.init_with_state(init_key)
    x, t, _, state = backprop.prepare(
        model, params, *blobs.train, "cross_entropy", state
    )
    tx = optim.adam(0.01)
    step = make_step(model, optimizer=tx)
    return step, TrainState(params, state, tx.init(params)), x, t, train_key


@pytest.mark.parametrize("batch_size", [16, None])
def test_an_epoch_is_run_steps_over_its_batches(setup, batch_size):
    step, train_state, x, t, train_key = setup
    n = x.shape[0]
    epoch = jax.jit(make_epoch(step, n, batch_size))
    got_state, got_losses = epoch(train_state, x, t, train_key, np.uint32(2))

    @jax.jit
    def by_hand(train_state, x, t, train_key):
        indices, keys = epoch_batches(train_key, 2, n, batch_size)
        return run_steps(step, train_state, x, t, indices, keys)

    want_state, want_losses = by_hand(train_state, x, t, train_key)
    steps = 1 if batch_size is None else n // batch_size
    assert got_losses.shape == (steps,)
    chex.assert_trees_all_equal(got_state, want_state)
    np.testing.assert_array_equal(got_losses, want_losses)


def test_run_steps_applies_the_step_to_each_batch_in_order(setup):
    step, train_state, x, t, _ = setup
    indices = jnp.asarray([[3, 1, 4], [1, 5, 9], [2, 6, 5]], jnp.int32)
    keys = jax.random.split(jax.random.key(1), 3)
    got_state, got_losses = jax.jit(run_steps, static_argnums=0)(
        step, train_state, x, t, indices, keys
    )
    one = jax.jit(step)
    want = train_state
    for i in range(3):
        want, value = one(want, x[indices[i]], t[indices[i]], keys[i])
        np.testing.assert_allclose(got_losses[i], value, rtol=1e-6)
    chex.assert_trees_all_close(got_state, want, rtol=1e-5, atol=1e-7)


def test_without_indices_every_step_sees_all_the_data(setup):
    step, train_state, x, t, _ = setup
    keys = jax.random.split(jax.random.key(2), 2)
    got_state, got_losses = jax.jit(run_steps, static_argnums=0)(
        step, train_state, x, t, None, keys
    )
    everything = jnp.broadcast_to(jnp.arange(x.shape[0]), (2, x.shape[0]))
    want_state, want_losses = jax.jit(run_steps, static_argnums=0)(
        step, train_state, x, t, everything, keys
    )
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-6)
    chex.assert_trees_all_close(got_state, want_state, rtol=1e-5, atol=1e-7)
