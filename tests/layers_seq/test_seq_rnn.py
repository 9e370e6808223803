"""The tanh RNN: the state carried between chunks and the recurrence written
out. (The layer's backward against jax.vjp and finite differences is
``tests/test_layers.py``'s, with every layer kind; the initial-state gradient
is ``test_seq_recurrent.py``'s, with the LSTM's and the GRU's.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from recurrent_testing import assert_last_state_and_carried_state
from seq_testing import normal

from jaxbp import layers as L


def test_rnn_last_state_and_carried_state():
    """return_sequences=False gives h_T; running two chunks with the state
    carried equals one run over the whole sequence."""
    assert_last_state_and_carried_state(L.rnn, L.rnn_forward)


@pytest.mark.parametrize("steps", [1, 4])
def test_rnn_forward_is_the_recurrence(steps):
    layer = L.rnn(3, return_sequences=True)
    _, params, _ = layer.init(jax.random.key(0), (steps, 2), jnp.float64)
    x = normal(0, (2, steps, 2), jnp.float64)
    h0 = normal(1, (2, 3), jnp.float64)
    y, _, _ = layer.forward(params, (), x)
    hs, h_last, _ = L.rnn_forward(params, x, h0)
    h, h_from = np.zeros((2, 3)), np.asarray(h0)
    for t in range(steps):
        h = np.tanh(x[:, t] @ params["w_x"] + h @ params["w_h"] + params["b"])
        h_from = np.tanh(x[:, t] @ params["w_x"] + h_from @ params["w_h"] + params["b"])
        np.testing.assert_allclose(y[:, t], h, rtol=1e-12)
        np.testing.assert_allclose(hs[t], h_from, rtol=1e-12)
    last, _, _ = L.rnn(3).forward(params, (), x)
    np.testing.assert_allclose(last, h, rtol=1e-12)
    np.testing.assert_allclose(h_last, h_from, rtol=1e-12)


def test_rnn_bad_shapes():
    with pytest.raises(
        ValueError,
        match=r"rnn expects inputs of per-example shape \(time, features\); got per-example shape \(5,\)",
    ):
        L.rnn(3).init(jax.random.key(0), (5,), jnp.float32)
    with pytest.raises(ValueError, match=r"hidden size must be a positive integer"):
        L.rnn(0)
