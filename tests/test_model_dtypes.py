"""dtypes: float64 needs x64 (no quiet truncation), and parameters of another
dtype than the model's are refused (gradients have their parameters' dtype)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.layers import dense


@pytest.mark.parametrize(
    "build",
    [
        lambda: jaxbp.mlp([2, 3, 1], dtype=jnp.float64),
        lambda: jaxbp.cnn((8, 8, 1), 10, channels=(2,), hidden=4, dtype=jnp.float64),
        lambda: jaxbp.sequential(dense(3), in_shape=(2,), dtype="float64"),
    ],
)
def test_float64_without_x64_says_how_to_enable_it(build):
    model = build()
    params = model.init(jax.random.key(0))  # x64 on (tests/conftest.py)
    x = np.ones((2, *model.in_shape))
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {jnp.dtype("float64")}
    with jax.enable_x64(False):
        model = build()  # describing it is fine; making arrays is not
        for use in (
            lambda: model.init(jax.random.key(0)),
            model.init_state,
            lambda: model.apply(params, x),
        ):
            with pytest.raises(ValueError, match="jax_enable_x64"):
                use()


@pytest.mark.parametrize("backprop", ["manual", "autodiff"])
def test_gradients_have_the_dtype_of_their_parameters(backprop):
    x = np.random.default_rng(0).normal(size=(6, 3))
    y = np.array([1, -1, 1, 1, -1, -1])
    for dtype in (jnp.float32, jnp.float64):
        model = jaxbp.mlp([3, 4, 1], dtype=dtype)
        params = model.init(jax.random.key(0))
        _, grads = jaxbp.loss_and_grad(
            model, params, x, y, loss="hinge", backprop=backprop
        )
        dtypes = jax.tree.map(lambda a: a.dtype, grads)
        assert dtypes == jax.tree.map(lambda a: a.dtype, params)
        assert set(jax.tree.leaves(dtypes)) == {jnp.dtype(dtype)}


@pytest.mark.parametrize("backprop", ["manual", "autodiff"])
def test_params_of_another_dtype_are_a_clear_error(backprop):
    model = jaxbp.mlp([3, 4, 1], dtype=jnp.float32)
    params = jax.tree.map(
        lambda a: a.astype(jnp.float64), model.init(jax.random.key(0))
    )
    x, y = np.ones((2, 3)), np.array([1, -1])
    with pytest.raises(ValueError, match="float64.*model's dtype is float32"):
        jaxbp.loss_and_grad(model, params, x, y, loss="hinge", backprop=backprop)
