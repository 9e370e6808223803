"""Sequence outputs: cross-entropy over (B, T, C) with labels (B, T) and an
optional mask, and the dense layer on the last axis of (B, T, D), against
jax.grad / jax.vjp."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RTOL, assert_trees_rel_close
from hypothesis import given, settings
from hypothesis import strategies as st
from seq_testing import assert_backward_equals_vjp, normal, sequence_problems

from jaxbp import layers as L
from jaxbp import losses


def sequence_targets(problem, masked: bool):
    rng = np.random.default_rng(problem["seed"])
    shape = (problem["batch"], problem["steps"])
    labels = jnp.asarray(rng.integers(0, problem["vocab"], size=shape), jnp.int32)
    mask = rng.random(shape) < 0.6 if masked else np.ones(shape, bool)
    return labels, jnp.asarray(mask)


@settings(max_examples=8)
@given(problem=sequence_problems(), masked=st.booleans())
def test_sequence_cross_entropy_backward_equals_jax_grad(problem, masked):
    loss = losses.get("cross_entropy")
    shape = (problem["batch"], problem["steps"], problem["vocab"])
    logits = normal(problem["seed"], shape, problem["dtype"])
    labels, mask = sequence_targets(problem, masked)
    target = loss.prepare(logits, losses.masked_labels(labels, mask))
    manual = jax.jit(loss.backward)(logits, target)
    auto = jax.jit(jax.grad(loss.value))(logits, target)
    assert_trees_rel_close(manual, auto, RTOL[problem["dtype"]])
    # the value: the mean over unmasked positions of −log softmax(z)[label]
    log_p = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float64), axis=-1))
    picked = np.take_along_axis(log_p, np.asarray(labels)[..., None], -1)[..., 0]
    mask = np.asarray(mask)
    want = -picked[mask].mean() if mask.any() else 0.0
    assert float(loss.value(logits, target)) == pytest.approx(want, rel=1e-5, abs=1e-6)
    # padding positions get no gradient
    assert not np.any(np.asarray(manual)[~mask])


def test_sequence_cross_entropy_unmasked_is_the_mean_of_per_position_losses():
    loss = losses.get("cross_entropy")
    logits = normal(0, (2, 3, 4), "float64")
    labels = jnp.array([[0, 3, 1], [2, 2, 0]])
    seq = loss.value(logits, loss.prepare(logits, labels))
    flat = logits.reshape(6, 4)
    per_row = loss.value(flat, loss.prepare(flat, labels.reshape(6)))
    assert float(seq) == pytest.approx(float(per_row), rel=1e-14)


def test_sequence_cross_entropy_bad_labels():
    loss = losses.get("cross_entropy")
    logits = jnp.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 4\)"):
        loss.prepare(logits, jnp.array([[0, 4, 1], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"must be integer classes of shape \(2, 3\)"):
        loss.prepare(logits, jnp.zeros((2, 4), jnp.int32))


@settings(max_examples=6)
@given(problem=sequence_problems(), use_bias=st.booleans())
def test_dense_on_sequences_equals_jax_vjp(problem, use_bias):
    layer = L.dense(problem["hidden"], use_bias=use_bias)
    in_shape = (problem["steps"], problem["features"])
    out_shape, params, _ = layer.init(
        jax.random.key(problem["seed"]), in_shape, jnp.dtype(problem["dtype"])
    )
    assert out_shape == (problem["steps"], problem["hidden"])
    x = normal(problem["seed"], (problem["batch"], *in_shape), problem["dtype"])
    dy = normal(problem["seed"] + 1, (problem["batch"], *out_shape), problem["dtype"])
    dparams, _ = assert_backward_equals_vjp(layer, params, x, dy, problem["dtype"])
    want_w = jnp.einsum("btd,bth->dh", x, dy)  # Σ_{b,t} x_btᵀ dy_bt
    assert_trees_rel_close(dparams["w"], want_w, 10 * RTOL[problem["dtype"]])
