"""A character model end to end: embedding → LSTM/GRU → dense over the vocabulary,
trained on sequence cross-entropy; the manual gradients equal jax.grad's."""

import jax
import jax.numpy as jnp
import pytest

import jaxbp
from jaxbp import layers as L


@pytest.mark.parametrize("recurrent", [L.lstm, L.gru])
def test_token_model_manual_gradients_equal_autodiff(recurrent):
    vocab, block = 11, 7
    model = jaxbp.sequential(
        L.embedding(vocab, 5),
        recurrent(6),
        L.dense(vocab),
        in_shape=(block,),
        dtype=jnp.float64,
    )
    params = model.init(jax.random.key(0))
    tokens = jax.random.randint(jax.random.key(1), (3, block + 1), 0, vocab)
    x, y = tokens[:, :-1], tokens[:, 1:]
    report = jaxbp.check_grads(model, params, x, y, loss="cross_entropy")
    assert report.ok, str(report)
    out = model.apply(params, x)
    assert out.shape == (3, block, vocab)


def test_token_model_rejects_float_inputs():
    model = jaxbp.sequential(L.embedding(4, 3), L.dense(4), in_shape=(2,))
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="integer tokens"):
        model.apply(params, jnp.zeros((1, 2)))
