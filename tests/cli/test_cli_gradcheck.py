"""``jaxbp gradcheck``: the table, for every combination of the layer flags."""

import re
import subprocess
import sys

import pytest
from cli_testing import assert_one_line_error, jaxbp
from helpers import python_child, users_xla_flags


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
    # the CNN at its default widths (~150k parameters): finite differences on
    # the default sample of 16 coordinates per leaf
    + [pytest.param(("--model", "cnn"), id="cnn default")],
)
def test_gradcheck_passes_for_every_layer_combination(flags):
    """Manual == jax.grad and == finite differences (float64) for the digits
    models with every combination of the layer flags, and for the CNN (narrowed,
    and at its default widths)."""
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


BLOBS = ("gradcheck", "--dataset", "blobs", "--hidden", "8", "--batch", "8")
BLOBS += ("--input-dropout", "0", "--dropout", "0")


def fd_coords(stdout):
    """{leaf path: its 'fd coords' cell, checked/size} of the printed table."""
    cells = re.findall(r"^(\S+dense/\w+)\s.*?\s(\d+/\d+)\s", stdout, re.MULTILINE)
    return dict(cells)


def test_gradcheck_samples_16_coordinates_per_leaf_by_default(run_main):
    """Default: 16 random coordinates per leaf, seed 0, one progress line per leaf."""
    result = run_main(*BLOBS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "a random sample of 16 coordinates per leaf, seed 0" in result.stdout
    assert fd_coords(result.stdout) == {
        "0.dense/b": "8/8",
        "0.dense/w": "16/16",
        "2.dense/b": "3/3",
        "2.dense/w": "16/24",
    }
    progress = [
        line for line in result.stderr.splitlines() if "finite differences" in line
    ]
    assert [line.split(":")[0] for line in progress] == [
        f"finite differences {i}/4" for i in range(1, 5)
    ]
    assert "0.dense/w (16 coordinates" in progress[1]


def test_gradcheck_sample_flags(run_main):
    result = run_main(*BLOBS, "--fd-samples", "3", "--fd-seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "a random sample of 3 coordinates per leaf, seed 7" in result.stdout
    assert set(fd_coords(result.stdout).values()) == {"3/8", "3/16", "3/3", "3/24"}
    result = run_main(*BLOBS, "--all-coordinates")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every coordinate" in result.stdout
    assert fd_coords(result.stdout)["2.dense/w"] == "24/24"


@pytest.mark.parametrize(
    "flags, fragments",
    [
        (("--fd-samples", "0"), ("--fd-samples", ">= 1")),
        (("--fd-samples", "x"), ("--fd-samples", "integer")),
        (("--fd-seed", "-1"), ("--fd-seed", ">= 0")),
        (("--fd-samples", "4", "--all-coordinates"), ("--all-coordinates",)),
    ],
)
def test_gradcheck_bad_sample_flags_exit_2(run_main, flags, fragments):
    assert_one_line_error(run_main(*BLOBS, *flags), *fragments)


def test_gradcheck_cnn_at_default_widths_stays_under_1_gb():
    """The sampled check of the default CNN (~30k parameters) in a fresh
    process: its own peak resident memory is under 1 GB. The child reads its
    VmHWM (the high-water mark of its own address space, new at exec):
    ru_maxrss would also count the pages of the large test process it was
    forked from."""
    script = (
        "import sys\n"
        "from jaxbp import cli\n"
        "status = cli.main(['gradcheck', '--model', 'cnn'])\n"
        "status_lines = open('/proc/self/status').read().splitlines()\n"
        "print([l.split()[1] for l in status_lines if l.startswith('VmHWM')][0])\n"
        "sys.exit(status)\n"
    )
    result = python_child(
        script, timeout=300, XLA_FLAGS=users_xla_flags()
    )  # as a user runs it
    assert result.returncode == 0, result.stderr[-2000:]
    assert "all gradients agree" in result.stdout
    peak_kb = int(result.stdout.strip().splitlines()[-1])  # Linux: kilobytes
    assert peak_kb < 2**20, f"peak RSS {peak_kb / 2**20:.2f} GB"
