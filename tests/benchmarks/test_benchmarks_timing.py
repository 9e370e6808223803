"""benchmarks/timing.py: the interleaved timer and its columns."""

import time

import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import timing


def test_interleaved_times_gives_one_sample_per_repetition():
    calls = {"a": lambda: np.zeros(3), "b": lambda: jnp.ones(3)}
    times = timing.interleaved_times(calls, reps=5, min_seconds=0.0, warmup=1)
    assert set(times) == {"a", "b"}
    for t in times.values():
        assert t.shape == (5,) and np.all(t > 0)


def test_interleaved_times_orders_contenders_by_their_cost():
    # a sleep of 2 ms against a no-op: robust to any noise of the machine
    calls = {"slow": lambda: time.sleep(2e-3), "fast": lambda: None}
    times = timing.interleaved_times(calls, reps=3, min_seconds=0.0, warmup=0)
    assert np.all(times["slow"] >= 2e-3)
    assert np.median(times["fast"]) < np.median(times["slow"])


def test_calibrate_repeats_short_calls_to_fill_the_sample():
    assert timing.calibrate(lambda: time.sleep(2e-3), min_seconds=1e-3) == 1
    assert timing.calibrate(lambda: None, min_seconds=1e-3) > 1


def test_quartiles_and_median():
    assert timing.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    assert timing.median([3.0, 1.0, 2.0]) == 2.0


def test_time_columns_are_milliseconds():
    cols = timing.time_columns("a_ms", np.array([1e-3, 2e-3, 3e-3]))
    assert cols == pytest.approx({"a_ms": 2.0, "a_ms_q1": 1.5, "a_ms_q3": 2.5})


def test_ratio_columns_pair_the_repetitions():
    # paired ratios are all 2, although the medians' ratio is not
    num, den = np.array([2.0, 8.0, 10.0]), np.array([1.0, 4.0, 5.0])
    assert timing.ratio_columns("a/b", num, den) == {
        "a/b": 2.0,
        "a/b_q1": 2.0,
        "a/b_q3": 2.0,
    }


def test_compile_seconds_measures_a_fresh_compilation():
    seconds = timing.compile_seconds(lambda x: x * 2, (jnp.ones(3),), reps=2)
    assert set(seconds) == {"lower_s", "compile_s"}
    assert seconds["lower_s"] > 0 and seconds["compile_s"] > 0
