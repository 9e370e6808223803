"""explain_step: the trace is what the model's own layers compute, equal to
loss_and_grad exactly, and it reproduces the post's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import explain
from jaxbp import layers as L

#: The post's published values (Mazur 2015), at their published digits.
PUBLISHED = {
    "out_h1": "0.593269992",
    "E_total": "0.298371109",
    "dE/dw5": "0.082167041",
    "dE/dw1": "0.000438568",
    "w5+": "0.35891648",
    "w6+": "0.408666186",
    "w7+": "0.511301270",
    "w8+": "0.561370121",
    "w1+": "0.149780716",
    "w2+": "0.19956143",
    "w3+": "0.24975114",
    "w4+": "0.29950229",
}


def at_published_digits(value: float, published: str) -> str:
    decimals = len(published.split(".")[1])
    return f"{value:.{decimals}f}"


def assert_trees_equal(a, b):
    """Every leaf equal with == (exactly), same tree structure."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_trace_reproduces_every_published_number(mazur_trace):
    hidden, output = mazur_trace.layers
    computed = {
        "out_h1": hidden.out[0, 0],
        "E_total": mazur_trace.value,
        "dE/dw5": output.d_w[0, 0],
        "dE/dw1": hidden.d_w[0, 0],
        "w5+": output.w_new[0, 0],
        "w6+": output.w_new[1, 0],
        "w7+": output.w_new[0, 1],
        "w8+": output.w_new[1, 1],
        "w1+": hidden.w_new[0, 0],
        "w2+": hidden.w_new[1, 0],
        "w3+": hidden.w_new[0, 1],
        "w4+": hidden.w_new[1, 1],
    }
    for name, published in PUBLISHED.items():
        assert at_published_digits(computed[name], published) == published, name


def test_gradients_equal_loss_and_grad_exactly(mazur, mazur_trace):
    network, model, params = mazur
    value, grads = jaxbp.loss_and_grad(
        model, params, network.inputs, network.targets, loss="mse"
    )
    assert mazur_trace.value == float(value)
    assert_trees_equal(mazur_trace.grads, grads)
    for t, i in zip(mazur_trace.layers, (0, 2), strict=True):
        assert t.d_w.dtype == np.float64
        np.testing.assert_array_equal(t.d_w, grads[i]["w"])
        np.testing.assert_array_equal(t.d_b, grads[i]["b"])


@pytest.mark.parametrize(
    "activation, loss, targets",
    [
        ("tanh", "cross_entropy", "classes"),
        ("relu", "mse", "values"),
        ("sigmoid", "binary_cross_entropy", "labels"),
        ("gelu", "hinge", "classes"),
    ],
)
def test_any_mlp_and_loss_equal_loss_and_grad(activation, loss, targets):
    key_x, key_y, key_p = jax.random.split(jax.random.key(3), 3)
    model = jaxbp.mlp([3, 5, 4, 2], activation=activation, dtype=jnp.float64)
    params = model.init(key_p)
    x = jax.random.normal(key_x, (6, 3), jnp.float64)
    y = {
        "classes": jax.random.randint(key_y, (6,), 0, 2),
        "values": jax.random.normal(key_y, (6, 2), jnp.float64),
        "labels": jax.random.bernoulli(key_y, 0.5, (6, 2)).astype(jnp.float64),
    }[targets]
    trace = explain.explain_step(model, params, x, y, loss=loss, learning_rate=0.1)
    value, grads = jaxbp.loss_and_grad(model, params, x, y, loss=loss)
    assert trace.value == float(value)
    assert_trees_equal(trace.grads, grads)
    assert trace.layers[-1].activation is None  # mlp's last layer is linear
    np.testing.assert_array_equal(trace.layers[-1].out, model.apply(params, x))


def test_the_layers_chain(mazur_trace):
    """Each layer's upstream gradient is the next layer's ∂E/∂x, δ is upstream
    times local, and the per-unit terms add up to ∂E/∂x."""
    hidden, output = mazur_trace.layers
    np.testing.assert_array_equal(hidden.d_out, output.d_x)
    np.testing.assert_array_equal(hidden.out, output.x)
    for t in mazur_trace.layers:
        np.testing.assert_array_equal(t.delta, t.d_out * t.local)
        np.testing.assert_allclose(t.d_x_terms.sum(axis=-1), t.d_x, rtol=1e-15)
        np.testing.assert_array_equal(t.d_x_terms[0], t.delta[0] * t.w)
        np.testing.assert_allclose(t.local, t.out * (1 - t.out), rtol=1e-15)


def test_update_is_sgd_with_frozen_biases(mazur, mazur_trace):
    network, model, _ = mazur
    for t in mazur_trace.layers:
        np.testing.assert_array_equal(t.b_new, t.b)
        np.testing.assert_array_equal(t.w_new, t.w - 0.5 * t.d_w)
    after = jaxbp.loss(
        model, mazur_trace.new_params, network.inputs, network.targets, loss="mse"
    )
    assert mazur_trace.value_after == float(after)
    assert mazur_trace.value_after < mazur_trace.value


def test_update_biases(mazur):
    network, model, params = mazur
    trace = explain.explain_step(
        model,
        params,
        network.inputs,
        network.targets,
        learning_rate=0.25,
        update_biases=True,
    )
    for t in trace.layers:
        np.testing.assert_array_equal(t.b_new, t.b - 0.25 * t.d_b)
        np.testing.assert_array_equal(t.w_new, t.w - 0.25 * t.d_w)


def test_float32_model_is_traced_in_float64(mazur):
    network, model64, params64 = mazur
    model32 = jaxbp.sequential(*model64.layers, in_shape=(2,), dtype=jnp.float32)
    params32 = jax.tree.map(lambda a: a.astype(jnp.float32), params64)
    trace = explain.explain_step(model32, params32, network.inputs, network.targets)
    params = jax.tree.map(lambda a: a.astype(jnp.float64), params32)
    _, grads = jaxbp.loss_and_grad(
        model64, params, network.inputs, network.targets, loss="mse"
    )
    assert trace.layers[0].d_w.dtype == np.float64
    assert_trees_equal(trace.grads, grads)


def test_same_numbers_with_x64_off(mazur_trace):
    """The post's network built and explained with x64 off: nothing is rounded
    to float32 on the way (the params are NumPy float64, the step runs in x64)."""
    with jax.enable_x64(False):
        network = explain.parse_network(explain.MAZUR)
        model, params = explain.build(network)
        trace = explain.explain_step(model, params, network.inputs, network.targets)
    assert trace.value == mazur_trace.value
    assert_trees_equal(trace.grads, mazur_trace.grads)
    assert_trees_equal(trace.new_params, mazur_trace.new_params)


def test_runs_no_jax_differentiation(mazur, no_differentiation):
    network, model, params = mazur
    trace = explain.explain_step(model, params, network.inputs, network.targets)
    assert np.all(np.isfinite(trace.layers[0].d_w))


def test_models_of_other_layers_are_refused():
    model = jaxbp.sequential(
        L.dense(3), L.batchnorm(), L.activation("relu"), in_shape=(2,)
    )
    params = model.init(jax.random.key(0))
    with pytest.raises(ValueError, match="layer 1 .*'batchnorm'"):
        explain.explain_step(model, params, np.ones((4, 2)), np.ones((4, 3)))
    model = jaxbp.sequential(L.activation("relu"), L.dense(2), in_shape=(2,))
    with pytest.raises(ValueError, match="layer 0"):
        explain.explain_step(
            model, model.init(jax.random.key(0)), np.ones((1, 2)), np.ones((1, 2))
        )


@pytest.mark.parametrize("learning_rate", [0, -0.5, float("nan"), "0.5", True])
def test_bad_learning_rate(mazur, learning_rate):
    network, model, params = mazur
    with pytest.raises(ValueError, match="learning_rate"):
        explain.explain_step(
            model, params, network.inputs, network.targets, learning_rate=learning_rate
        )


def test_loss_curve_continues_the_step(mazur, mazur_trace):
    network, model, params = mazur
    curve = explain.loss_curve(model, params, network.inputs, network.targets, steps=3)
    assert curve.losses.shape == (4,)
    np.testing.assert_allclose(
        curve.losses[:2], [mazur_trace.value, mazur_trace.value_after], rtol=1e-13
    )
    assert np.all(np.diff(curve.losses) < 0)
    np.testing.assert_array_equal(curve.params[0]["b"], params[0]["b"])  # frozen
    after = jaxbp.loss(model, curve.params, network.inputs, network.targets, loss="mse")
    assert curve.losses[-1] == float(after)
    np.testing.assert_array_equal(
        curve.output, model.apply(curve.params, network.inputs)
    )


def test_loss_curve_checks_steps(mazur):
    network, model, params = mazur
    with pytest.raises(ValueError, match="steps"):
        explain.loss_curve(model, params, network.inputs, network.targets, steps=0)
