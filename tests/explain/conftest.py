"""Fixtures of the explain tests: the post's network as a jaxbp model, and its trace."""

import pytest

from jaxbp import explain


@pytest.fixture(scope="module")
def mazur():
    """(network, model, params) of the post's worked example, in float64."""
    network = explain.parse_network(explain.MAZUR)
    model, params = explain.build(network)
    return network, model, params


@pytest.fixture(scope="module")
def mazur_trace(mazur):
    network, model, params = mazur
    return explain.explain_step(
        model, params, network.inputs, network.targets, loss="mse", learning_rate=0.5
    )
