"""benchmarks/train_benchmark.py in its quick mode."""

import json

from benchmarks import train_benchmark


def test_train_benchmark(tmp_path):
    assert train_benchmark.main(["--quick", "--out", str(tmp_path)]) == 0
    written = json.loads((tmp_path / "train_benchmark.json").read_text())
    assert written["benchmark"] == "train_benchmark" and written["quick"] is True
    (step,) = written["step"]
    assert step["model"] == "64-128-10" and step["manual/autodiff"] > 0
    assert step["manual_ms"] > 0 and step["autodiff_ms"] > 0
    assert written["checkpoint"]["jaxbp_ms"] > 0
