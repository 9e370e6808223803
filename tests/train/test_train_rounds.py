"""Rounds: short ones run one ahead, with the same results as one at a time."""

import numpy as np
import pytest
from train_asserts import assert_bit_identical

import jaxbp
from jaxbp import optim
from jaxbp.train import fit, rounds
from jaxbp.train import history as hist


def counting_run(events, diverge_at=None):
    """A Run whose program adds 1 to a counter state, logging ``("run", n)``
    at each dispatch; round ``diverge_at`` has a NaN step loss."""

    def program(state, x, t, key, number, xv, tv):
        events.append(("run", int(number)))
        loss = np.nan if number == diverge_at else 1.0 / number
        return state + 1, np.full(3, loss), loss, True, (None, None, None)

    def record(number, train_loss, evaluation):
        return {"epoch": number, "train_loss": float(train_loss), "val_loss": None}

    data = rounds.RoundData(None, None, None, None)
    return rounds.Run(program, data, None, {"patience": None}, None, None, record)


def run_rounds(events, n, *, stop_after=None, diverge_at=None):
    def callback(record):
        events.append(("record", record["epoch"]))

    def should_stop():  # called after each round, before its callback
        events.append(("asked", None))
        asked = sum(kind == "asked" for kind, _ in events)
        return stop_after is not None and asked >= stop_after

    progress = hist.start(np.int64(0), None)
    run = counting_run(events, diverge_at)
    return rounds.train_rounds(run, progress, (n, 1), callback, should_stop)


def hist_of(events):
    return [n for kind, n in events if kind == "record"]


def test_short_rounds_are_dispatched_before_the_last_one_is_read():
    events = []
    progress = run_rounds(events, 5)
    # round 1 is timed alone (it compiles); from round 2 on the next round is
    # running while the last one is read and recorded
    assert [e for e in events if e[0] != "asked"] == [
        ("run", 1), ("record", 1),
        ("run", 2), ("run", 3), ("record", 2),
        ("run", 4), ("record", 3),
        ("run", 5), ("record", 4),
        ("record", 5),
    ]  # fmt: skip
    assert progress.epoch == 5 and int(progress.current) == 5
    assert [r["epoch"] for r in progress.history] == [1, 2, 3, 4, 5]


def test_long_rounds_run_one_at_a_time(monkeypatch):
    monkeypatch.setattr(rounds, "AHEAD_BELOW_SECONDS", 0.0)
    events = []
    run_rounds(events, 4)
    expected = [
        e for n in (1, 2, 3, 4) for e in (("run", n), ("asked", None), ("record", n))
    ]
    assert events == expected


def test_a_round_run_ahead_is_dropped_when_training_stops():
    events = []
    progress = run_rounds(events, 10, stop_after=3)
    assert ("run", 4) in events  # dispatched ahead, then dropped
    assert hist_of(events) == [1, 2, 3]
    assert progress.epoch == 3 and int(progress.current) == 3


def test_divergence_is_reported_for_its_round_not_the_one_ahead():
    events = []
    with pytest.raises(hist.TrainingDiverged, match=r"epoch 4, step 1\b") as info:
        run_rounds(events, 10, diverge_at=4)
    assert [r["epoch"] for r in info.value.history] == [1, 2, 3]
    assert ("run", 5) in events and hist_of(events) == [1, 2, 3]


@pytest.mark.parametrize("patience", [None, 2])
def test_fit_gives_the_same_results_with_rounds_one_at_a_time(
    blobs, monkeypatch, patience
):
    # validation labels shifted by one class make the best epoch come early,
    # so patience stops the run with a round already dispatched ahead
    train = blobs.train
    val = (train.x, (train.y + 1) % 3) if patience else blobs.val
    model = jaxbp.mlp([2, 16, 3], dropout=0.1)
    kwargs = {"optimizer": optim.adam(0.01), "batch_size": 16, "seed": 3}
    ahead = fit(model, train, val, epochs=12, patience=patience, **kwargs)
    monkeypatch.setattr(rounds, "AHEAD_BELOW_SECONDS", 0.0)
    alone = fit(model, train, val, epochs=12, patience=patience, **kwargs)
    assert_bit_identical(ahead, alone)
    assert ahead.stopped_early == alone.stopped_early == (patience is not None)
