"""benchmarks/peers.py: every installed peer computes what jaxbp computes (same
weights, same batches, the same losses), the quick run's rows and JSON, the
note for a peer that is not installed, and a fresh-process run."""

import importlib.util
import json

import numpy as np
import pytest

from benchmarks import peers, peers_problem, peers_process


def installed(library: str) -> bool:
    return importlib.util.find_spec(peers.LIBRARIES[library]) is not None


@pytest.fixture(scope="module")
def problem():
    return peers_problem.make_problem(1)


@pytest.fixture(scope="module")
def jaxbp_losses(problem):
    """Epoch 1's step losses of jaxbp's manual scan, the baseline."""
    trainer = peers.peer_module("jaxbp").make_trainer(problem)
    return np.asarray(trainer.epoch(problem.indices[0]), np.float64)


def test_the_problem_has_fits_batches_and_weights(problem):
    assert problem.sizes == peers_problem.SIZES
    assert problem.indices.shape == (1, 1293 // 32, 32)  # 40 steps, 13 left out
    assert len(np.unique(problem.indices[0])) == 40 * 32
    assert [w.shape for w, _ in problem.weights] == [(64, 256), (256, 256), (256, 10)]


def test_the_problem_file_reads_back(problem, tmp_path):
    back = peers_problem.load(peers_problem.save(problem, tmp_path / "p.npz"))
    np.testing.assert_array_equal(back.indices, problem.indices)
    np.testing.assert_array_equal(back.x_train, problem.x_train)
    for (w, b), (w2, b2) in zip(back.weights, problem.weights, strict=True):
        np.testing.assert_array_equal(w, w2)
        np.testing.assert_array_equal(b, b2)


@pytest.mark.parametrize(
    ("name", "library", "kwargs"),
    [c for c in peers.EPOCH_CONTENDERS if c[0] != peers.EPOCH_BASELINE],
    ids=[c[0] for c in peers.EPOCH_CONTENDERS if c[0] != peers.EPOCH_BASELINE],
)
def test_each_installed_peer_trains_the_same_epoch(
    name, library, kwargs, problem, jaxbp_losses
):
    """Same weights, same batches, same optimizer: the same losses, step by step
    (scikit-learn reports the epoch's mean only)."""
    if not installed(library):
        pytest.skip(f"{library} is not installed")
    trainer = peers.peer_module(library).make_trainer(problem, **kwargs)
    losses = np.asarray(trainer.epoch(problem.indices[0]), np.float64)
    columns = peers.loss_columns(losses, jaxbp_losses)
    assert columns["loss_diff"] < 1e-4
    if library != "sklearn":
        assert losses.shape == jaxbp_losses.shape
        assert columns["step_loss_diff"] < 1e-4
    assert 0.8 < trainer.accuracy(problem.x_test, problem.y_test) <= 1.0


def test_quick_run_rows_json_and_skip_notes(tmp_path, capsys, ctx):
    """jaxbp, plain JAX and Flax (a note instead where Flax is absent), at the
    smallest settings; every peer's computation is checked above."""
    only = "epoch,gradient,jax,flax"
    args = peers.parse(["--quick", "--out", str(tmp_path), "--only", only])
    peers.finish(args, peers.run(args, ctx))
    out = capsys.readouterr().out
    payload = json.loads((tmp_path / "peers.json").read_text())
    libraries = [lib for lib in ("jaxbp", "jax", "flax") if installed(lib)]
    assert payload["settings"]["libraries"] == libraries
    missing = [] if installed("flax") else ["flax"]
    assert len(payload["skipped"]) == len(missing)
    for lib, note in zip(missing, payload["skipped"], strict=True):
        assert note.startswith(f"skipped {lib}: ") and peers.INSTALL in note
        assert note in out
    epoch = [r for r in payload["rows"] if r["section"] == "epoch"]
    expected = [n for n, lib, _ in peers.EPOCH_CONTENDERS if lib in libraries]
    assert [r["name"] for r in epoch] == [*expected, peers.FIT]
    for r in epoch:
        assert r["steps"] == 40
        assert 0 < r["ms_q1"] <= r["ms"] <= r["ms_q3"]
        assert r["loss_diff"] < 1e-4  # fit's first epoch too
    gradient = [r for r in payload["rows"] if r["section"] == "gradient"]
    assert gradient[0]["name"] == peers.GRADIENT_BASELINE
    assert len(gradient) == 2 + len(libraries) - 1
    for r in gradient:
        assert r["of_peak"] > 0 and r["gflops"] > 0
        assert r["loss_diff"] < 1e-4
    assert payload["versions"]["jax"] and payload["machine"]["backend"]
    assert "steady-state epoch" in out and "one loss + gradient" in out


def test_a_missing_peer_is_skipped_with_a_note(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        peers.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    present, notes = peers.available(["jaxbp", "torch", "sklearn"])
    assert present == ["jaxbp", "sklearn"]
    assert notes == [f"skipped torch: torch is not installed ({peers.INSTALL})"]


def test_only_names_sections_and_libraries(capsys):
    assert peers.selection(None) == (list(peers.SECTIONS), list(peers.LIBRARIES))
    assert peers.selection(["process", "torch"]) == (["process"], ["jaxbp", "torch"])
    with pytest.raises(SystemExit) as stop:
        peers.main(["--only", "epoch,tensorflow"])
    assert stop.value.code == 2
    assert "--only: unknown name 'tensorflow'" in capsys.readouterr().err


def test_fresh_processes_train_and_report_their_accuracy(tmp_path):
    path = peers_problem.save(peers_problem.make_problem(1), tmp_path / "p.npz")
    runners = peers_process.contenders(["jaxbp", "sklearn"], path, 1, tmp_path)
    names = [c.name for c in runners]
    assert names == [
        "jaxbp train, no cache",
        "jaxbp train, warm cache",
        "jaxbp fit script",
        "jaxbp train defaults (200 epochs), warm cache",
        "import jax",
        "import jaxbp",
        "scikit-learn script",
    ]
    cold, warm = runners[0].env, runners[1].env
    assert cold["JAXBP_COMPILATION_CACHE"] == "0"
    assert "JAX_COMPILATION_CACHE_DIR" not in cold
    assert "PYTHONDONTWRITEBYTECODE" not in cold  # bytecode cached, as for a user
    assert warm["JAX_COMPILATION_CACHE_DIR"].startswith(str(tmp_path))
    assert runners[3].env is warm and runners[3].argv[-2:] == [
        "--out",
        str(tmp_path / "defaults"),
    ]
    timed = [runners[0], runners[5], runners[6]]
    runs = peers_process.interleaved_runs(timed, reps=1)
    rows = peers_process.summary_rows(timed, runs, 1, tmp_path)
    for row in rows:
        assert row["seconds"] > 0
    for row in (rows[0], rows[2]):
        assert 0.8 < row["test_accuracy"] <= 1.0
    assert rows[1]["test_accuracy"] is None  # an import trains nothing
    assert "/jax_script" not in rows[0]  # no JAX script, no ratio to it
    assert rows[0]["command"].startswith("python -m jaxbp train --quiet")
    assert rows[1]["command"] == "python -c import jaxbp"
    assert (
        rows[2]["command"] == "python benchmarks/peers_script.py sklearn $WORK/p.npz 1"
    )


def test_the_script_says_how_to_call_it(capsys):
    from benchmarks import peers_script

    assert peers_script.main(["pytorch", "p.npz", "1"]) == 2
    assert "usage: peers_script.py" in capsys.readouterr().err
