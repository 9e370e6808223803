"""``jaxbp train --dtype float64`` trains in float64 (x64 switched on by the CLI)."""

import json

import numpy as np
from cli_testing import FAST, jaxbp


def _float32_form(values):
    """Every value is a float32's shortest decimal form (as jaxbp records them)."""
    return all(repr(v) == str(np.float32(v)) for v in values)


def test_dtype_float64_really_trains_in_float64(tmp_path):
    losses = {}
    for dtype in ("float32", "float64"):
        out = tmp_path / dtype
        result = jaxbp("train", *FAST, "--dtype", dtype, "--out", str(out))
        assert result.returncode == 0, result.stderr
        assert "truncated" not in result.stderr.lower()
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["config"]["dtype"] == dtype
        losses[dtype] = [r["train_loss"] for r in metrics["history"]]
        losses[dtype] += [r["val_loss"] for r in metrics["history"]]
    assert _float32_form(losses["float32"])  # float32 numbers
    assert not _float32_form(losses["float64"])  # numbers float32 cannot hold
