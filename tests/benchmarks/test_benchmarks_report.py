"""benchmarks/report.py: flags, the table printer, the JSON writer."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import report


def test_to_jsonable_converts_arrays_non_finite_and_keys():
    value = {
        1: (np.float32(0.5), np.arange(2)),
        "x": jnp.ones(2),
        "nan": float("nan"),
        "inf": [float("inf"), -float("inf")],
    }
    assert report.to_jsonable(value) == {
        "1": [0.5, [0, 1]],
        "x": [1.0, 1.0],
        "nan": None,
        "inf": ["inf", "-inf"],
    }


def test_write_json_round_trips(tmp_path):
    path = report.write_json(tmp_path / "sub" / "r.json", {"a": np.float64(1.5)})
    assert path == tmp_path / "sub" / "r.json"
    assert json.loads(path.read_text()) == {"a": 1.5}


def test_write_json_refuses_what_it_cannot_encode(tmp_path):
    with pytest.raises(TypeError):
        report.write_json(tmp_path / "r.json", {"a": object()})


def test_format_table_aligns_columns():
    text = report.format_table(
        ["name", "value"], [["a", 1.23456], ["longer", None]], title="T"
    )
    assert text.splitlines() == [
        "T",
        "name    value",
        "------  -----",
        "a       1.235",
        "longer      -",
    ]


def test_print_table_prints_the_formatted_table(capsys):
    report.print_table(["k"], [["v"]])
    assert capsys.readouterr().out == "k\n-\nv\n"


def test_parse_args_defaults_to_the_results_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "RESULTS", tmp_path / "results")
    args = report.parse_args("thing", "doc", [])
    assert args.path == tmp_path / "results" / "thing.json" and not args.quick
    args = report.parse_args("thing", "doc", ["--quick"])
    assert args.path == tmp_path / "results" / "quick" / "thing.json"
    assert args.out.is_dir()
    args = report.parse_args("thing", "doc", ["--out", str(tmp_path / "o")])
    assert args.path == tmp_path / "o" / "thing.json"
