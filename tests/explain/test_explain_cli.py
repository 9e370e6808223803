"""``jaxbp explain`` as a user runs it: the post's numbers digit by digit, the
JSON trace against loss_and_grad, a user's weights file, and user mistakes."""

import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxbp
from jaxbp import explain
from jaxbp.cli import main

#: The post's published values, keyed by their name in the text output.
PUBLISHED = {
    "out_h1": "0.593269992",
    "E_total": "0.298371109",
    "∂E/∂w5": "0.082167041",
    "∂E/∂w1": "0.000438568",
    "w5⁺": "0.35891648",
    "w6⁺": "0.408666186",
    "w7⁺": "0.511301270",
    "w8⁺": "0.561370121",
    "w1⁺": "0.149780716",
    "w2⁺": "0.19956143",
    "w3⁺": "0.24975114",
    "w4⁺": "0.29950229",
}


def run_jaxbp(*args):
    return subprocess.run(
        [sys.executable, "-m", "jaxbp", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "JAX_PLATFORMS": "cpu", "JAXBP_COMPILATION_CACHE": "0"},
    )


@pytest.fixture
def explain_cli(capsys, monkeypatch):
    """Run ``jaxbp explain ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("JAXBP_COMPILATION_CACHE", "0")

    def run(*args):
        code = main(["explain", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def final_values(text: str) -> dict[str, str]:
    """name -> the number after the last '=' of the first line 'name = … = number'."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\S+) = .* = (\S+)$", line)
        if match:
            values.setdefault(match[1], match[2])
    return values


@pytest.fixture(scope="module")
def default_run():
    return run_jaxbp("explain")


def test_default_output_reproduces_every_published_number(default_run):
    assert default_run.returncode == 0, default_run.stderr
    values = final_values(default_run.stdout)
    for name, published in PUBLISHED.items():
        decimals = len(published.split(".")[1])
        assert f"{float(values[name]):.{decimals}f}" == published, (name, values[name])


def test_default_output_shows_the_chain_rule(default_run):
    out = default_run.stdout
    titles = re.findall(r"^(\d\. .+)\n-+$", out, flags=re.MULTILINE)
    assert [t.split(":")[0] for t in titles] == [
        "1. The network",
        *["2. Forward pass"] * 2,
        "3. Loss",
        *["4. Backward pass"] * 2,
        "5. Update",
    ]
    assert "∂E/∂w5 = ∂E/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5 = " in out
    assert "∂E/∂out_h1 = Σ_k ∂E/∂net_k · ∂net_k/∂out_h1 = δ_o1·w5 + δ_o2·w7" in out
    assert "net_h1 = w1·i1 + w2·i2 + b_h1 = 0.15 × 0.05 + 0.2 × 0.1 + 0.35 = " in out
    assert "biases: not updated" in out
    assert default_run.stderr == ""


def test_json_trace_equals_loss_and_grad(explain_cli, mazur):
    code, out, _ = explain_cli("--format", "json")
    assert code == 0
    data = json.loads(out)
    network, model, params = mazur
    value, grads = jaxbp.loss_and_grad(
        model, params, network.inputs, network.targets, loss="mse"
    )
    assert data["loss"]["E"] == float(value)
    by_layer = {b["layer"]: b for b in data["backward"]}
    for layer, index in ((1, 0), (2, 2)):
        assert np.array_equal(by_layer[layer]["d_w"], grads[index]["w"])
        assert np.array_equal(by_layer[layer]["d_b"], grads[index]["b"])
    outputs = model.apply(params, network.inputs)
    assert np.array_equal(data["forward"][-1]["out"], outputs)


def test_a_weights_file_round_trips(explain_cli, tmp_path):
    """A net built in Python, written as a weights file, explained: the same
    numbers as jaxbp.loss_and_grad on the Python model."""
    model = jaxbp.mlp([3, 4, 2], activation="tanh", dtype=jnp.float64)
    params = model.init(jax.random.key(7))
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    weights = {
        "sizes": [3, 4, 2],
        "activation": ["tanh", "identity"],
        "loss": "mse",
        "weights": [
            np.asarray(params[0]["w"]).tolist(),
            np.asarray(params[2]["w"]).tolist(),
        ],
        "biases": [
            np.asarray(params[0]["b"]).tolist(),
            np.asarray(params[2]["b"]).tolist(),
        ],
        "inputs": x.tolist(),
        "targets": y.tolist(),
    }
    path = tmp_path / "net.json"
    path.write_text(json.dumps(weights))
    code, out, err = explain_cli(
        "--weights", str(path), "--format", "json", "--lr", "0.1"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    value, grads = jaxbp.loss_and_grad(model, params, x, y, loss="mse")
    assert data["loss"]["E"] == float(value)
    by_layer = {b["layer"]: b for b in data["backward"]}
    for layer, index in ((1, 0), (2, 2)):
        assert np.array_equal(by_layer[layer]["d_w"], grads[index]["w"])
        assert np.array_equal(by_layer[layer]["d_b"], grads[index]["b"])
        w_new = data["update"][layer - 1]["w_new"]
        np.testing.assert_allclose(
            w_new, params[index]["w"] - 0.1 * grads[index]["w"], rtol=1e-15
        )
    assert data["network"]["activations"] == ["tanh", "identity"]
    code, text, _ = explain_cli("--weights", str(path))
    assert "out_o1 = net_o1 (no activation)" in text
    assert "∂E/∂out_o1 = (out_o1 − target_o1) / 2 = " in text


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_malformed_weights_file_is_one_line_without_traceback(tmp_path):
    data = {k: v for k, v in explain.MAZUR.items() if k != "biases"}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(data))
    result = run_jaxbp("explain", "--weights", str(path))
    assert_one_line_error(
        result.returncode, result.stderr, f"--weights {path}", "'biases'"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    "change, fragments",
    [
        ({"weights": [[[0.15, 0.25], [0.2, 0.3]]]}, ["weights: expected a list of 2"]),
        ({"weights": [[[0.1, 0.2]], [[0.4, 0.5], [0.45, 0.55]]]}, ["weights[0]"]),
        ({"inputs": [0.05, "0.1"]}, ["inputs[1]", "finite number"]),
        ({"sizes": "2,2,2"}, ["sizes"]),
        ({"activation": "swish"}, ["activation", "swish"]),
        ({"learning_rate": 0.5}, ["unknown field 'learning_rate'"]),
    ],
)
def test_malformed_weights_files(explain_cli, tmp_path, change, fragments):
    path = tmp_path / "net.json"
    path.write_text(json.dumps({**explain.MAZUR, **change}))
    code, out, err = explain_cli("--weights", str(path))
    assert_one_line_error(code, err, "--weights", *fragments)
    assert out == ""


def test_unreadable_weights_files(explain_cli, tmp_path):
    code, _, err = explain_cli("--weights", str(tmp_path / "none.json"))
    assert_one_line_error(code, err, "--weights", "cannot read")
    (tmp_path / "bad.json").write_text("{sizes: [2, 2]}")
    code, _, err = explain_cli("--weights", str(tmp_path / "bad.json"))
    assert_one_line_error(code, err, "--weights", "not valid JSON")


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (["--activation", "swish"], ["--activation", "swish"]),
        (["--activation", "relu,tanh,sigmoid"], ["--activation", "a list of 2"]),
        (["--loss", "hinge"], ["--loss hinge", "targets"]),
        (["--png", "/nonexistent/dir/net.png"], ["--png", "no such directory"]),
    ],
)
def test_flag_mistakes(explain_cli, flags, fragments):
    code, _, err = explain_cli(*flags)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--lr", "0"], "--lr"),
        (["--lr", "fast"], "--lr"),
        (["--steps", "0"], "--steps"),
        (["--max-units", "-1"], "--max-units"),
        (["--format", "html"], "--format"),
        (["--loss", "l1"], "--loss"),
    ],
)
def test_bad_flag_values_exit_2(explain_cli, flags, flag):
    with pytest.raises(SystemExit) as exit_:
        explain_cli(*flags)
    assert exit_.value.code == 2


def test_markdown(explain_cli):
    code, out, _ = explain_cli("--format", "markdown", "--steps", "2")
    assert code == 0
    assert out.startswith("# ")
    headings = re.findall(r"^## (.+)$", out, flags=re.MULTILINE)
    assert headings[0] == "1. The network" and headings[-1] == "6. Repeat: 2 steps"
    assert out.count("```text") == len(headings) and out.count("```") == 2 * len(
        headings
    )
    assert "| step | E_total |" in out
    assert re.search(r"^\| 2 \| \d\.\d+ \|$", out, flags=re.MULTILINE)


def test_png(explain_cli, tmp_path):
    path = tmp_path / "net.png"
    code, _, err = explain_cli("--png", str(path))
    assert code == 0 and str(path) in err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 800 and height > 400


def test_steps(explain_cli, mazur):
    code, out, _ = explain_cli("--steps", "12", "--format", "json")
    assert code == 0
    data = json.loads(out)["steps"]
    network, model, params = mazur
    curve = explain.loss_curve(model, params, network.inputs, network.targets, steps=12)
    assert list(data["E"]) == ["0", "1", "2", "3", "4", "5", "10", "12"]
    assert [data["E"][s] for s in data["E"]] == [
        curve.losses[int(s)] for s in data["E"]
    ]
    assert np.array_equal(data["output"], curve.output)
    code, text, _ = explain_cli("--steps", "12")
    rows = re.findall(r"^\s+(\d+)\s+(\S+)$", text, flags=re.MULTILINE)
    assert [int(step) for step, _ in rows] == [0, 1, 2, 3, 4, 5, 10, 12]


def test_after_one_and_10000_steps_close_to_the_post(explain_cli):
    """The post's later figures carry its own rounding: close, not equal
    (README, "Backprop by hand", has jaxbp's values beside them)."""
    code, out, _ = explain_cli("--steps", "10000", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["steps"]["E"]["1"] == pytest.approx(0.291027924, abs=1e-6)
    assert data["E_after"] == pytest.approx(0.291027924, abs=1e-6)
    assert data["steps"]["E"]["10000"] == pytest.approx(3.5102e-05, rel=1e-4)
    np.testing.assert_allclose(
        data["steps"]["output"][0], [0.015912196, 0.984065734], atol=1e-5
    )


def test_update_biases_and_learning_rate(explain_cli):
    code, out, _ = explain_cli("--update-biases", "--lr", "0.25")
    assert code == 0
    values = final_values(out)
    assert "b_h1⁺" in values and "biases: not updated" not in out
    assert "w5⁺ = w5 − η · ∂E/∂w5 = 0.4 − 0.25 × 0.082167041 = " in out


def test_max_units_chooses_units_or_matrices(explain_cli, tmp_path):
    wide = {
        **explain.MAZUR,
        "sizes": [2, 6, 2],
        "weights": [[[0.1] * 6, [0.2] * 6], [[0.3, 0.4]] * 6],
    }
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(wide))
    _, matrices, _ = explain_cli("--weights", str(path))
    assert "W1 (2×6) =" in matrices and "(6 in all)" in matrices
    _, units, _ = explain_cli("--weights", str(path), "--max-units", "6")
    assert "net_h6 = w11·i1 + w12·i2 + b_h6 = " in units


def test_import_jaxbp_does_not_import_matplotlib():
    code = "import sys, jaxbp, jaxbp.explain, jaxbp.cli; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
