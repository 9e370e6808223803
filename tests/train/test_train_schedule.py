"""Batches and keys: each epoch a fresh permutation cut into equal batches, keys
derived from fold_in(train_key, epoch); batch_schedule is the epochs concatenated."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp.train import Schedule, batch_schedule, epoch_batches, train_keys


def key_data(keys):
    return np.asarray(jax.random.key_data(keys))


def test_an_epoch_is_a_permutation_cut_into_equal_batches():
    train_key = train_keys(jax.random.key(3))[1]
    indices, keys = epoch_batches(train_key, 1, 50, 8)
    assert indices.shape == (6, 8) and indices.dtype == jnp.int32
    assert keys.shape == (6,)
    used = np.asarray(indices).ravel()
    assert len(set(used.tolist())) == 48 and used.min() >= 0 and used.max() < 50
    # the steps' keys are derived from fold_in(train_key, epoch), as documented
    epoch_key = jax.random.fold_in(train_key, jnp.uint32(1))
    perm_key, steps_key = jax.random.split(epoch_key)
    np.testing.assert_array_equal(
        key_data(keys), key_data(jax.random.split(steps_key, 6))
    )
    order = jax.random.permutation(perm_key, jnp.arange(50, dtype=jnp.int32))
    np.testing.assert_array_equal(indices, np.asarray(order[:48]).reshape(6, 8))
    # another epoch, another permutation and other keys
    other, other_keys = epoch_batches(train_key, 2, 50, 8)
    assert not np.array_equal(indices, other)
    assert not np.array_equal(key_data(keys), key_data(other_keys))


@pytest.mark.parametrize("batch_size", [None, 50])
def test_full_batch_is_one_step_on_everything_in_order(batch_size):
    indices, keys = epoch_batches(jax.random.key(0), 4, 50, batch_size)
    np.testing.assert_array_equal(indices, np.arange(50)[None])
    assert keys.shape == (1,)


def test_batch_schedule_is_fits_epochs_concatenated():
    seed, n, batch, epochs = 7, 30, 4, 3
    schedule = batch_schedule(seed, n, batch, epochs)
    assert isinstance(schedule, Schedule)
    assert schedule.indices.shape == (epochs * (n // batch), batch)
    train_key = train_keys(jax.random.key(seed))[1]
    parts = [epoch_batches(train_key, e, n, batch) for e in range(1, epochs + 1)]
    np.testing.assert_array_equal(
        schedule.indices, np.concatenate([p[0] for p in parts])
    )
    np.testing.assert_array_equal(
        key_data(schedule.keys), np.concatenate([key_data(p[1]) for p in parts])
    )
    # a train key gives the same schedule as its seed
    chex.assert_trees_all_equal(
        jax.tree.map(key_data_or_array, batch_schedule(train_key, n, batch, epochs)),
        jax.tree.map(key_data_or_array, schedule),
    )


def key_data_or_array(leaf):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return key_data(leaf)
    return np.asarray(leaf)


@pytest.mark.parametrize(
    "args, name",
    [
        ((0, 10, 0, 1), "batch_size"),
        ((0, 10, 11, 1), "batch_size"),
        ((0, 10, 2.5, 1), "batch_size"),
        ((0, 10, 2, 0), "epochs"),
        ((-1, 10, 2, 1), "seed"),
    ],
)
def test_bad_schedule_arguments_are_value_errors(args, name):
    with pytest.raises(ValueError, match=name):
        batch_schedule(*args)
