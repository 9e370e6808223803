"""``jaxbp gradcheck``: the table, for every combination of the layer flags."""

import subprocess
import sys

import pytest
from cli_testing import jaxbp


def test_gradcheck_passes_and_prints_the_table():
    # no input dropout: with 2 input features it zeroes whole examples, putting
    # ReLU units exactly at their kink, where finite differences do not apply
    result = jaxbp(
        *("gradcheck", "--dataset", "blobs", "--hidden", "8,8"),
        *("--batch", "8", "--input-dropout", "0"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "max|manual-fd|" in result.stdout and "all gradients agree" in result.stdout
    assert "0.dense/w" in result.stdout


GRADCHECK_MLP = ("--hidden", "16,16", "--batch", "8")
GRADCHECK_CNN = (
    "--model",
    "cnn",
    "--channels",
    "4,8",
    "--hidden",
    "16",
    "--batch",
    "8",
)


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param((*GRADCHECK_MLP, *bn, *drop, *res), id=" ".join(bn + drop + res))
        for bn in ((), ("--batchnorm",))
        for drop in (("--dropout", "0"), ("--dropout", "0.3"))
        for res in ((), ("--residual",))
    ]
    + [
        pytest.param((*GRADCHECK_CNN, *bn, *drop), id="cnn " + " ".join(bn + drop))
        for bn in (("--batchnorm",), ("--no-batchnorm",))
        for drop in (("--dropout", "0"), ("--dropout", "0.5"))
    ]
    # the CNN at its default widths (~150k parameters): against jax.grad only
    + [pytest.param(("--model", "cnn", "--no-finite-differences"), id="cnn default")],
)
def test_gradcheck_passes_for_every_layer_combination(flags):
    """Manual == jax.grad and == finite differences (float64) for the digits
    models with every combination of the layer flags, and for the CNN (with
    its conv widths narrowed so that finite differences take seconds; at its
    default widths against jax.grad)."""
    result = jaxbp("gradcheck", *flags)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all gradients agree" in result.stdout, result.stdout
    rows = [line for line in result.stdout.splitlines() if line.endswith(" ok")]
    assert len(rows) >= 4, result.stdout  # every parameter leaf is checked
    if "--batchnorm" in flags:
        assert "batchnorm/gamma" in result.stdout
    if "cnn" in flags:
        assert "conv2d/w" in result.stdout


DISAGREEING = """
import sys
import jaxbp

real = jaxbp.check_grads


class Disagreeing:
    ok = False

    def __init__(self, report):
        self.report = report

    def __str__(self):
        return str(self.report) + "\\ninjected: a gradient disagrees"


jaxbp.check_grads = lambda *args, **kwargs: Disagreeing(real(*args, **kwargs))
from jaxbp.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_gradcheck_exits_1_when_a_gradient_disagrees():
    """Exit status 1 with the table and no traceback when the report is not ok."""
    result = subprocess.run(
        [sys.executable, "-c", DISAGREEING, "gradcheck", "--dataset", "blobs"]
        + ["--hidden", "4", "--batch", "4", "--no-finite-differences"],
        check=False,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "dense/w" in result.stdout
    assert "injected: a gradient disagrees" in result.stdout
