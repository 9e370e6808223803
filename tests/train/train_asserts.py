"""Comparisons of training runs shared by the training tests."""

import json

import chex
import numpy as np


def history_values(history, key):
    """One field of a fit history as a float64 array (None -> NaN)."""
    return np.array([np.nan if r[key] is None else r[key] for r in history], np.float64)


def assert_histories_close(a, b, rtol):
    assert [r["epoch"] for r in a] == [r["epoch"] for r in b]
    for key in ("train_loss", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(
            history_values(a, key), history_values(b, key), rtol=rtol, err_msg=key
        )


def assert_same_history(a, b):
    """JSON text compares NaN/None/inf exactly and floats by their repr (bit for bit)."""
    assert json.dumps(a) == json.dumps(b)


def assert_bit_identical(a, b):
    """Two FitResults: parameters, optimizer state and history bit for bit."""
    chex.assert_trees_all_equal(a.params, b.params)
    chex.assert_trees_all_equal(a.opt_state, b.opt_state)
    assert_same_history(a.history, b.history)
