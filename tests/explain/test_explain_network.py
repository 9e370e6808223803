"""The weights file format: the post's network, round trips, and every kind of
malformed file refused with the field named."""

import copy
import json

import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import explain


def test_mazur_network(mazur):
    network, model, params = mazur
    assert network.sizes == (2, 2, 2)
    assert network.activations == ("sigmoid", "sigmoid")
    # w1: i1→h1, w2: i2→h1, w3: i1→h2, w4: i2→h2 (W[j, k]: from unit j to unit k)
    np.testing.assert_array_equal(params[0]["w"], [[0.15, 0.25], [0.20, 0.30]])
    np.testing.assert_array_equal(params[2]["w"], [[0.40, 0.50], [0.45, 0.55]])
    np.testing.assert_array_equal(params[0]["b"], [0.35, 0.35])
    np.testing.assert_array_equal(params[2]["b"], [0.60, 0.60])
    assert model.layer_names == ("dense", "sigmoid", "dense", "sigmoid")
    assert model.dtype == jnp.float64


def test_network_dict_round_trips(tmp_path):
    data = {
        "sizes": [3, 2, 1],
        "activation": ["tanh", "identity"],
        "weights": [[[1, 2], [3, 4], [5, 6]], [[0.5], [-0.5]]],
        "biases": [[0.1, 0.2], 0.3],
        "inputs": [[1, 2, 3], [4, 5, 6]],
        "targets": [[1], [0]],
    }
    network = explain.parse_network(data)
    assert network.loss == "mse"  # the default
    path = tmp_path / "net.json"
    path.write_text(json.dumps(explain.network_dict(network)))
    again = explain.parse_network(explain.read_network(path))
    for a, b in zip(network, again, strict=True):
        np.testing.assert_equal(a, b)
    model, _ = explain.build(network)
    assert model.layer_names == ("dense", "tanh", "dense")


def _with(**changes):
    data = copy.deepcopy(explain.MAZUR)
    for name, value in changes.items():
        if value is _MISSING:
            del data[name]
        else:
            data[name] = value
    return data


_MISSING = object()

MALFORMED = [
    (_with(weights=_MISSING), "weights", "missing field 'weights'"),
    (_with(sizes=_MISSING), "sizes", "missing field 'sizes'"),
    (_with(inputs=_MISSING), "inputs", "missing field 'inputs'"),
    (_with(bias=[0.35, 0.6]), "bias", "unknown field 'bias'"),
    (_with(sizes=[2]), "sizes", "sizes: expected a list of at least 2"),
    (_with(sizes=[2, 0, 2]), "sizes", "positive integers"),
    (_with(sizes=[2, 2.5, 2]), "sizes", "positive integers"),
    (
        _with(weights=[[[0.15, 0.25], [0.2, 0.3]]]),
        "weights",
        "weights: expected a list of 2",
    ),
    (
        _with(weights=[[[0.15, 0.25], [0.2, 0.3]], [[0.4, 0.5, 0.1], [0.45, 0.55]]]),
        "weights",
        "weights[1][0]: expected a list of 2 numbers; got a list of 3",
    ),
    (
        _with(weights=[[[0.15, 0.25]], [[0.4, 0.5], [0.45, 0.55]]]),
        "weights",
        "weights[0]: expected a list of 2 lists",
    ),
    (
        _with(weights=[[[0.15, "0.25"], [0.2, 0.3]], [[0.4, 0.5], [0.45, 0.55]]]),
        "weights",
        'weights[0][0][1]: expected a finite number; got "0.25"',
    ),
    (
        _with(weights=[[[0.15, None], [0.2, 0.3]], [[0.4, 0.5], [0.45, 0.55]]]),
        "weights",
        "weights[0][0][1]: expected a finite number; got null",
    ),
    (_with(biases=[0.35]), "biases", "biases: expected a list of 2"),
    (
        _with(biases=[0.35, [0.6, True]]),
        "biases",
        "biases[1][1]: expected a finite number",
    ),
    (_with(inputs=[0.05, 0.1, 0.2]), "inputs", "inputs: expected a list of 2 numbers"),
    (_with(inputs=[0.05, "x"]), "inputs", "inputs[1]: expected a finite number"),
    (_with(targets=[[0.01, 0.99], [0, 1]]), "targets", "one per example of inputs (1)"),
    (_with(activation="swish"), "activation", 'unknown activation "swish"'),
    (_with(activation=["sigmoid"]), "activation", "a list of 2 names"),
    (_with(loss="l1"), "loss", 'unknown loss "l1"'),
    (_with(loss="hinge"), "targets", "targets do not fit the loss 'hinge'"),
    ([1, 2], None, "expected a JSON object"),
]


@pytest.mark.parametrize("data, field, fragment", MALFORMED)
def test_malformed_networks_name_the_field(data, field, fragment):
    with pytest.raises(explain.NetworkError) as error:
        explain.parse_network(data)
    assert error.value.field == field
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(explain.NetworkError, match="cannot read"):
        explain.read_network(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{'sizes': [2, 2]}")
    with pytest.raises(explain.NetworkError, match="not valid JSON") as error:
        explain.read_network(bad)
    assert error.value.field is None


def test_built_model_is_a_plain_jaxbp_model(mazur):
    network, model, params = mazur
    reference = jaxbp.sequential(
        jaxbp.layers.dense(2),
        jaxbp.layers.activation("sigmoid"),
        jaxbp.layers.dense(2),
        jaxbp.layers.activation("sigmoid"),
        in_shape=(2,),
        dtype=jnp.float64,
    )
    np.testing.assert_array_equal(
        model.apply(params, network.inputs), reference.apply(params, network.inputs)
    )
