"""benchmarks/gpt_vs_torch.py: the GPT against PyTorch when it is installed,
a note and exit 0 when it is not."""

import importlib.util
import json

import jax
import pytest

from benchmarks import gpt_vs_torch
from jaxbp import recipes

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_runs_or_says_why_not(tmp_path, capsys):
    assert gpt_vs_torch.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    if not HAS_TORCH:
        assert out.startswith("skipped: PyTorch is not installed")
        assert not list(tmp_path.iterdir())
        return
    (row,) = json.loads((tmp_path / "gpt_vs_torch.json").read_text())["rows"]
    for name in ("jaxbp", "torch"):
        assert row[f"{name}_step_ms"] > 0 and row[f"{name}_tokens_per_s"] > 0
    assert row["torch/jaxbp_q1"] <= row["torch/jaxbp"] <= row["torch/jaxbp_q3"]
    assert "PyTorch / jaxbp time" in out


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_the_torch_model_has_ours_parameter_count():
    model = gpt_vs_torch.torch_gpt(65, gpt_vs_torch.QUICK)
    ours = recipes.language_model(
        "gpt", 65, block_size=16, layers=1, heads=2, width=16
    ).init(jax.random.key(0))
    count = sum(leaf.size for leaf in jax.tree.leaves(ours))
    assert sum(p.numel() for p in model.parameters()) == count
