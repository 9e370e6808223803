"""benchmarks/vs_sklearn.py: one epoch of each contender (the full comparison
is ``python benchmarks/vs_sklearn.py``)."""

import pytest

from benchmarks import vs_sklearn
from jaxbp import data


def test_each_contender_trains_and_reports_its_accuracy(tmp_path):
    seconds, accuracy = vs_sklearn.time_jaxbp(1, 0, str(tmp_path), cache=False)
    assert seconds > 0 and 0.5 < accuracy <= 1.0  # one epoch learns the digits
    digits = data.load("digits")
    sk_seconds, sk_accuracy = vs_sklearn.time_sklearn(digits, 1, 0)
    assert sk_seconds > 0 and 0.5 < sk_accuracy <= 1.0


def test_summarize_compares_the_medians():
    runs = {
        "jaxbp": [(2.0, 0.9), (4.0, 0.8), (3.0, 0.7)],
        "jaxbp_no_cache": [(6.0, 0.9)] * 3,
        "sklearn": [(4.0, 0.95), (4.0, 0.9), (5.0, 0.85)],
    }
    results = vs_sklearn.summarize(runs, epochs=7)
    assert results["epochs"] == 7
    assert results["median_jaxbp_seconds"] == 3.0
    assert results["jaxbp_over_sklearn"] == pytest.approx(3.0 / 4.0)
    assert results["jaxbp_no_cache_over_sklearn"] == pytest.approx(6.0 / 4.0)
    assert results["sklearn_test_accuracy"] == [0.95, 0.9, 0.85]
