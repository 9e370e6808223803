"""mlp's batchnorm / dropout / residual options and the cnn: structure, gradients,
training."""

import functools
import tracemalloc

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxbp
from jaxbp import data, optim
from jaxbp.model import cnn


def test_mlp_default_structure_is_unchanged():
    model = jaxbp.mlp([4, 8, 8, 3])
    assert model.layer_names == ("dense", "relu", "dense", "relu", "dense")


def test_mlp_options_structure():
    model = jaxbp.mlp([4, 8, 8, 3], "tanh", batchnorm=True, dropout=0.5)
    assert model.layer_names == (
        *("dense", "batchnorm", "tanh", "dropout"),
        *("dense", "batchnorm", "tanh", "dropout"),
        "dense",
    )
    # residual: only blocks whose input and output widths agree (8 -> 8)
    model = jaxbp.mlp([4, 8, 8, 8, 3], "tanh", residual=True, batchnorm=True)
    assert model.layer_names == (
        *("dense", "batchnorm", "tanh"),
        "residual",
        "residual",
        "dense",
    )
    params, state = model.init_with_state(jax.random.key(0))
    assert params[3][0]["w"].shape == (8, 8) and set(state[3][1]) == {"mean", "var"}
    # the residual block computes x + tanh(batchnorm(dense(x))), here in
    # evaluation mode with the initial running averages (mean 0, var 1)
    x = jax.random.normal(jax.random.key(1), (5, 8))
    got, _, _ = model.layers[3].forward(params[3], state[3], x, train=False)
    dense, bn = params[3][0], params[3][1]
    assert "b" not in dense  # batch norm's beta replaces the dense bias
    h = (x @ dense["w"]) / np.sqrt(1 + 1e-5) * bn["gamma"] + bn["beta"]
    np.testing.assert_allclose(got, x + np.tanh(h), rtol=1e-5, atol=1e-6)


def test_forward_defaults_to_evaluation_and_the_gradient_to_training():
    model = jaxbp.mlp([3, 4, 2], dropout=0.5, batchnorm=True)
    params, state = model.init_with_state(jax.random.key(0))
    x, y = jax.random.normal(jax.random.key(1), (6, 3)), jnp.arange(6) % 2
    out, _, new_state = model.forward(params, state, x)  # no key: evaluation
    chex.assert_trees_all_equal(new_state, state)  # running averages untouched
    np.testing.assert_array_equal(out, model.apply(params, x, state=state))
    with pytest.raises(ValueError, match=r"needs a PRNG key in training mode"):
        jaxbp.loss_and_grad(model, params, x, y, state=state)
    trained = jaxbp.forward_backward(
        model, params, x, y, state=state, key=jax.random.key(2)
    )
    assert not np.allclose(trained.state[1]["mean"], state[1]["mean"])


def test_mlp_option_errors():
    with pytest.raises(ValueError, match=r"dropout rate must be a number in \[0, 1\)"):
        jaxbp.mlp([3, 4, 2], dropout=1.0)
    with pytest.raises(ValueError, match="unknown activation"):
        jaxbp.mlp([3, 4, 2], "nope", batchnorm=True)


@functools.cache
def option_model(activation, batchnorm, dropout, residual, dtype):
    return jaxbp.mlp(
        [3, 4, 4, 2],
        activation,
        batchnorm=batchnorm,
        dropout=dropout,
        residual=residual,
        dtype=dtype,
    )


@settings(max_examples=4)
@given(
    activation=st.sampled_from(["tanh", "sigmoid", "gelu"]),
    batchnorm=st.booleans(),
    dropout=st.sampled_from([0.0, 0.4]),
    residual=st.booleans(),
    train=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**16),
)
def test_mlp_options_manual_equals_autodiff(
    activation, batchnorm, dropout, residual, train, dtype, seed
):
    model = option_model(activation, batchnorm, dropout, residual, dtype)
    params, state = model.init_with_state(jax.random.key(seed))
    x = jax.random.normal(jax.random.key(seed + 1), (6, 3), dtype)
    y = jnp.arange(6) % 2
    report = jaxbp.check_grads(
        model,
        params,
        x,
        y,
        state=state,
        key=jax.random.key(seed + 2),
        train=train,
        finite_differences=dtype == "float64",
        # the dense biases before batch norm have gradient 0 (rounding only)
        fd_atol=1e-8,
    )
    assert report.ok, str(report)


def test_cnn_structure_and_errors():
    model = cnn()
    assert model.in_shape == (8, 8, 1) and model.out_shape == (10,)
    assert model.layer_names == (
        *("conv2d", "batchnorm", "relu", "conv2d", "batchnorm", "relu"),
        *("max_pool", "flatten", "dense", "relu", "dropout", "dense"),
    )
    params = model.init(jax.random.key(0))
    assert params[0]["w"].shape == (3, 3, 1, 32)
    assert "b" not in params[0]  # no conv bias before batch norm
    assert params[3]["w"].shape == (3, 3, 32, 64)
    assert params[8]["w"].shape == (4 * 4 * 64, 128)
    plain = cnn(batchnorm=False, dropout=0.0)
    assert "batchnorm" not in plain.layer_names and "dropout" not in plain.layer_names
    assert plain.init(jax.random.key(0))[0]["b"].shape == (32,)
    with pytest.raises(ValueError, match=r"image shape \(height, width, channels\)"):
        cnn((64,))
    with pytest.raises(ValueError, match="channels must be positive integers"):
        cnn(channels=())


def test_cnn_manual_equals_autodiff():
    model = cnn((6, 6, 1), 4, channels=(3, 4), hidden=5, dtype="float64")
    params, state = model.init_with_state(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (5, 6, 6, 1), jnp.float64)
    y = jnp.array([0, 1, 2, 3, 0])
    got = jaxbp.check_grads(model, params, x, y, state=state, key=jax.random.key(2))
    assert got.ok, str(got)


def test_cnn_trains_on_digits():
    """A few epochs of the default cnn on the digits (the full recipe in the cnn
    docstring reaches >= 98.5% test accuracy)."""
    ds = data.load("digits", images=True)
    model = cnn()
    params, state = model.init_with_state(jax.random.key(0))
    tx = optim.adam(2e-3)
    x, y = jnp.asarray(ds.train.x), jnp.asarray(ds.train.y)
    batch = 32
    n = x.shape[0] // batch * batch

    @jax.jit
    def epoch(carry, key):
        def step(carry, idx):
            params, state, opt, key = carry
            key, sub = jax.random.split(key)
            out = jaxbp.forward_backward(
                model, params, x[idx], y[idx], state=state, key=sub
            )
            updates, opt = tx.update(out.grads, opt, params)
            return (optim.apply_updates(params, updates), out.state, opt, key), None

        order = jax.random.permutation(key, x.shape[0])[:n].reshape(-1, batch)
        return jax.lax.scan(step, (*carry, key), order)[0][:3]

    carry = (params, state, tx.init(params))
    for e in range(6):
        carry = epoch(carry, jax.random.key(100 + e))
    params, state, _ = carry
    logits = jax.jit(lambda p, s: model.apply(p, ds.test.x, state=s))(params, state)
    accuracy = float(jnp.mean(jnp.argmax(logits, axis=1) == ds.test.y))
    assert accuracy > 0.96, accuracy


def test_check_input_copies_host_data_only_to_the_device():
    """Host data already of the model's dtype is not copied on the host before
    its transfer (NumPy's ``astype`` copies by default); another dtype is cast."""
    model = jaxbp.mlp([256, 4])
    x = np.random.default_rng(0).normal(size=(4096, 256)).astype(np.float32)
    tracemalloc.start()
    try:
        got = model.check_input(x)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 4
    np.testing.assert_array_equal(np.asarray(got), x)
    cast = model.check_input(x.astype(np.float64))
    assert cast.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(cast), x)
