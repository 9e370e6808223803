"""Checks the benchmark tests share: what a row's columns must hold."""

import math


def assert_positive(row: dict, *keys: str) -> None:
    """Each ``row[key]`` is a finite positive float."""
    for key in keys:
        value = row[key]
        assert isinstance(value, float), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)


def assert_ordered_quartiles(row: dict, *prefixes: str) -> None:
    """``q1 <= median <= q3`` for each column prefix."""
    for prefix in prefixes:
        assert row[f"{prefix}_q1"] <= row[prefix] <= row[f"{prefix}_q3"], prefix


def profiled(row: dict) -> bool:
    """Whether ``row`` holds a profile; where the profiler gave none (a backend
    without it), the row must say why in its ``profile`` field instead."""
    if "profile" not in row:
        return True
    reason = row["profile"]
    assert reason.startswith("unavailable: ") and len(reason) > len("unavailable: ")
    return False
