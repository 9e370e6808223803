"""Names, number formatting and the text / markdown / JSON renderings."""

import json

import numpy as np
import pytest

from jaxbp import explain
from jaxbp.explain.formulas import Section, num, per_example, vector
from jaxbp.explain.names import bias_names, layer_title, unit_names, weight_names
from jaxbp.explain.walkthrough import table_steps


def test_post_names():
    assert unit_names([2, 2, 2]) == (("i1", "i2"), ("h1", "h2"), ("o1", "o2"))
    first, second = weight_names([2, 2, 2])
    # w1: i1→h1, w2: i2→h1, w3: i1→h2, w4: i2→h2; names[l][j, k]: from j to k
    assert first.tolist() == [["w1", "w3"], ["w2", "w4"]]
    assert second.tolist() == [["w5", "w7"], ["w6", "w8"]]
    assert bias_names([2, 2, 2]) == (("b_h1", "b_h2"), ("b_o1", "b_o2"))


def test_layer_indexed_names():
    units = unit_names([3, 2, 2, 1])
    assert units == (("i1", "i2", "i3"), ("h1_1", "h1_2"), ("h2_1", "h2_2"), ("o1",))
    names = weight_names([3, 2, 2, 1])
    assert [w.shape for w in names] == [(3, 2), (2, 2), (2, 1)]
    assert names[0][2, 1] == "w6" and names[1][0, 0] == "w7" and names[2][1, 0] == "w12"
    assert [layer_title(layer, 3) for layer in (1, 2, 3)] == [
        "hidden layer 1",
        "hidden layer 2",
        "output layer",
    ]
    assert unit_names([4, 3]) == (("i1", "i2", "i3", "i4"), ("o1", "o2", "o3"))


@pytest.mark.parametrize(
    "value, text",
    [
        (0.35891648004, "0.35891648"),
        (0.5112, "0.5112"),
        (-0.0190491182, "-0.019049118"),
        (0.000438568, "0.000438568"),
        (3.5101877829e-05, "3.51018778e-05"),
        (0.0, "0"),
        (-0.0, "0"),
        (1284.1848348, "1284.1848348"),
        (2.5e7, "2.5e+07"),
    ],
)
def test_numbers_as_by_hand(value, text):
    assert num(value) == text


def test_vectors_are_cut():
    assert vector(np.arange(6.0), 3) == "[0, 1, 2, … (6 in all)]"
    assert vector([0.5, 1.5], 3) == "[0.5, 1.5]"
    assert per_example(np.array([0.25])) == "0.25"
    assert per_example(np.array([0.25, 1])) == "[0.25, 1]"


def test_table_steps():
    assert table_steps(10000) == [0, 1, 2, 3, 4, 5, 10, 100, 1000, 10000]
    assert table_steps(3) == [0, 1, 2, 3]
    assert table_steps(12) == [0, 1, 2, 3, 4, 5, 10, 12]


def test_text_and_markdown():
    sections = [
        Section("1. A", ("x = 1", "", "y = 2")),
        Section("2. B", ("z = 3",), (("step", "E"), (("0", "0.5"), ("10", "0.25")))),
    ]
    text = explain.to_text(sections)
    assert "1. A\n----\n  x = 1\n\n  y = 2" in text
    assert "  step     E\n     0   0.5\n    10  0.25" in text
    markdown = explain.to_markdown(sections)
    assert markdown.startswith("# ")
    assert (
        "## 2. B\n\n```text\nz = 3\n```\n\n| step | E |\n| ---: | ---: |\n| 0 | 0.5 |"
        in markdown
    )


def test_sections_of_the_post(mazur_trace):
    titles = [s.title for s in explain.sections(mazur_trace)]
    assert titles == [
        "1. The network",
        "2. Forward pass: hidden layer",
        "2. Forward pass: output layer",
        "3. Loss",
        "4. Backward pass: output layer",
        "4. Backward pass: hidden layer",
        "5. Update",
    ]
    with pytest.raises(ValueError, match="max_units"):
        explain.sections(mazur_trace, max_units=0)


def test_matrices_when_a_layer_is_wider_than_max_units(mazur_trace):
    lines = [
        line for s in explain.sections(mazur_trace, max_units=1) for line in s.lines
    ]
    assert "net1 = x W1 + b1" in lines
    assert "W1 (2×2) =" in lines
    assert "    [0.15, … (2 in all)]" in lines
    assert not any(line.startswith("net_h1") for line in lines)


def test_trace_dict_is_json_with_every_number(mazur_trace):
    data = json.loads(json.dumps(explain.trace_dict(mazur_trace)))
    assert data["names"]["weights"][1] == [["w5", "w7"], ["w6", "w8"]]
    assert [b["layer"] for b in data["backward"]] == [2, 1]
    assert data["backward"][0]["d_w"] == mazur_trace.layers[1].d_w.tolist()
    assert data["forward"][0]["out"] == mazur_trace.layers[0].out.tolist()
    assert data["loss"]["E"] == mazur_trace.value
    assert data["E_after"] == mazur_trace.value_after
    assert sum(data["loss"]["per_output"]) == pytest.approx(
        data["loss"]["E"], rel=1e-15
    )


def test_several_examples_and_one_output():
    """Per-unit quantities become vectors over the examples, ∂E/∂w sums them."""
    network = explain.parse_network(
        {
            **explain.MAZUR,
            "sizes": [2, 2, 1],
            "weights": [explain.MAZUR["weights"][0], [[0.4], [0.45]]],
            "inputs": [[0.05, 0.1], [1, 0]],
            "targets": [[0.01], [1]],
        }
    )
    model, params = explain.build(network)
    trace = explain.explain_step(model, params, network.inputs, network.targets)
    lines = [line for s in explain.sections(trace) for line in s.lines]
    w5 = next(line for line in lines if line.startswith("∂E/∂w5 = "))
    assert w5.startswith(
        "∂E/∂w5 = Σ_n ∂E/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5 = Σ_n ["
    )
    assert w5.endswith(f" = {num(trace.layers[1].d_w[0, 0])}")
    assert f"E_total = E_o1 = {num(trace.value)}" in lines
    assert "∂E/∂out_o1 = (out_o1 − target_o1) / 2 = (" in "\n".join(lines)
