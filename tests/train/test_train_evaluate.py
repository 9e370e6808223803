"""Evaluation: the accuracy rules, chunked prediction equals one pass, and
evaluate takes an (x, y) pair."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp.train import evaluate, predict

X = jnp.asarray([[2.0, 0.0], [-1.0, 5.0], [0.5, 0.0], [-3.0, 0.0]], jnp.float32)


def test_accuracy_by_sign_for_one_output():
    model = jaxbp.mlp([2, 1])
    params = (
        {"w": jnp.asarray([[1.0], [0.0]], jnp.float32), "b": jnp.zeros(1, jnp.float32)},
    )
    y = jnp.asarray([1, 1, 0, 0])  # predictions by sign: 1, 0, 1, 0
    for loss in ("binary_cross_entropy", "hinge"):
        _, accuracy = evaluate(model, params, (X, y), loss=loss)
        assert accuracy == 0.5


def test_accuracy_by_argmax_and_chunked_evaluation():
    multi = jaxbp.mlp([2, 3])
    p3 = ({"w": jnp.eye(2, 3, dtype=jnp.float32), "b": jnp.zeros(3, jnp.float32)},)
    labels = jnp.asarray([0, 1, 0, 2])  # argmax: 0, 1, 0, 2 (row 4: [-3, 0, 0])
    _, accuracy = evaluate(multi, p3, (X, labels), loss="cross_entropy")
    assert accuracy == 0.75
    loss_all, acc_all = evaluate(multi, p3, (X, labels), loss="hinge")
    loss_chunks, acc_chunks = evaluate(
        multi, p3, (X, labels), loss="hinge", batch_size=3
    )
    assert acc_all == acc_chunks
    np.testing.assert_allclose(loss_all, loss_chunks, rtol=1e-6)
    assert isinstance(loss_all, float)


def test_mse_has_no_accuracy(sine):
    model = jaxbp.mlp([1, 4, 1], "tanh")
    params = model.init(jax.random.key(0))
    value, accuracy = evaluate(model, params, sine.test, loss="mse")
    assert accuracy is None and np.isfinite(value) and value > 0


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_predict_in_chunks_equals_one_pass(batch_size):
    model = jaxbp.mlp([2, 8, 3], "tanh", batchnorm=True)
    params, state = model.init_with_state(jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (64, 2))
    whole = model.apply(params, x, state=state)
    chunked = jax.jit(
        lambda p, s, x: predict(model, p, x, state=s, batch_size=batch_size)
    )(params, state, x)
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, rtol=1e-6, atol=1e-6)


def test_bad_evaluate_arguments_are_value_errors():
    model = jaxbp.mlp([2, 3])
    params = model.init(jax.random.key(0))
    y = jnp.asarray([0, 1, 2, 0])
    with pytest.raises(ValueError, match="data must be an"):
        evaluate(model, params, X)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(model, params, (X, y), batch_size=0)
    with pytest.raises(ValueError, match="loss"):
        evaluate(model, params, (X, y), loss="l1")


def test_compile_evaluate_leaves_nothing_for_evaluate_to_compile():
    from jaxbp import model as M
    from jaxbp import train
    from jaxbp.compilation import compile_log

    model = M.mlp([3, 11, 4])  # shapes no other test evaluates
    x = np.linspace(-1, 1, 21 * 3, dtype=np.float32).reshape(21, 3)
    data = (x, np.arange(21) % 4)
    with compile_log() as ahead:
        train.compile_evaluate(model, data, batch_size=8)
    params = model.init(jax.random.key(0))
    with compile_log() as later:
        loss, accuracy = train.evaluate(model, params, data, batch_size=8)
    assert ahead.programs == 1 and later.programs == 0
    assert np.isfinite(loss) and 0 <= accuracy <= 1
