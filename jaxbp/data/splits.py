"""Splitting and standardizing: the pieces every dataset in ``jaxbp.data`` is made of.

* :class:`Split` (``x``, ``y``) and :class:`Dataset` (three splits plus what
  they are);
* :func:`standardize`: per-feature statistics of the training split only,
  computed in float64, applied to every split (a constant feature gets std 1);
* :func:`stratified_holdout`: hold out ``n_held`` examples with each stratum's
  count the floor or ceiling of its proportional share;
* :func:`split_three`: the test split, then the validation split of the rest;
* :func:`make_dataset`: check, standardize and (for images) reshape to NHWC.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """One split of a dataset.

    Attributes:
      x: float32 features, shape ``(n, *in_shape)``.
      y: int32 class labels of shape ``(n,)``, or float32 regression targets
        of shape ``(n, 1)``.
    """

    x: np.ndarray
    y: np.ndarray


class Dataset(NamedTuple):
    """A dataset split into train/val/test, features standardized.

    Attributes:
      name: the name passed to :func:`load`.
      train, val, test: the splits.
      task: ``"classification"`` or ``"regression"``.
      num_classes: number of classes; ``None`` for regression.
      in_shape: per-example feature shape, e.g. ``(64,)`` or ``(8, 8, 1)``.
      feature_mean, feature_std: float32 arrays of shape ``in_shape``, the
        training split's per-feature statistics used to standardize every
        split (``std`` is 1 where the training feature is constant).
    """

    name: str
    train: Split
    val: Split
    test: Split
    task: str
    num_classes: int | None
    in_shape: tuple[int, ...]
    feature_mean: np.ndarray
    feature_std: np.ndarray


#: The seed of the real datasets' val/test splits: they never move.
FIXED_SPLIT_SEED = 0
_STATS_CHUNK = 8192  # rows per chunk when computing statistics


# --------------------------------------------------------------------------
# Checks and standardization


def check_finite(x, what: str) -> None:
    """Raise ``ValueError`` if ``x`` contains NaN or infinite values.

    ``what`` names the array in the message, e.g. ``"digits train features"``.
    """
    x = np.asarray(x)
    if not (np.issubdtype(x.dtype, np.floating) or np.iscomplexobj(x)):
        return  # integers and booleans are always finite
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(
            f"{what} contains NaN or infinite values "
            f"({int(np.isnan(x).sum())} NaN, {int(np.isinf(x).sum())} infinite "
            f"of {x.size} entries)"
        )


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (axis 0) mean and std in float64, in bounded memory."""
    n = x.shape[0]
    total = np.zeros(x.shape[1:], np.float64)
    for i in range(0, n, _STATS_CHUNK):
        total += x[i : i + _STATS_CHUNK].sum(axis=0, dtype=np.float64)
    mean = total / n
    sq = np.zeros(x.shape[1:], np.float64)
    lo = np.full(x.shape[1:], np.inf)
    hi = np.full(x.shape[1:], -np.inf)
    for i in range(0, n, _STATS_CHUNK):
        chunk = x[i : i + _STATS_CHUNK]
        sq += ((chunk - mean) ** 2).sum(axis=0)
        lo = np.minimum(lo, chunk.min(axis=0))
        hi = np.maximum(hi, chunk.max(axis=0))
    std = np.sqrt(sq / n)
    # Exactly constant features get std 1 (tested on min == max, so rounding
    # in the mean cannot turn a constant into a tiny nonzero std).
    std[(lo == hi) | (std == 0)] = 1.0
    return mean, std


def standardize(train_x, *others, in_place: bool = False):
    """Standardize features with statistics of ``train_x`` only.

    Statistics are per feature (over axis 0, any trailing shape), computed in
    float64 (population std, ``ddof=0``); a feature that is constant in
    ``train_x`` gets std 1, so it maps to 0 in the training data.

    Args:
      train_x: training features, shape ``(n, ...)`` with ``n >= 1``.
      *others: more arrays (validation, test, ...) with the same trailing
        shape, standardized with ``train_x``'s statistics.
      in_place: write the standardized values over the arrays themselves
        (each must be a writable float32 NumPy array) instead of new ones: the
        same values, without a second copy of the data in memory.

    Returns:
      ``(mean, std, arrays)``: float32 ``mean`` and ``std`` of shape
      ``train_x.shape[1:]``, and the tuple of standardized float32 arrays
      ``(train_x, *others)``, i.e.
      ``mean, std, (x_train, x_val, x_test) = standardize(x_train, x_val, x_test)``.

    Raises:
      ValueError: if ``train_x`` is empty, the shapes disagree, or any array
        contains NaN or infinite values.
    """
    arrays = [np.asarray(train_x), *(np.asarray(o) for o in others)]
    for i, a in enumerate(arrays):
        what = "train_x" if i == 0 else f"array {i} passed to standardize"
        check_finite(a, what)
        if a.ndim < 1:
            raise ValueError(
                f"{what}: expected an array of shape (n, ...), got a scalar"
            )
        if a.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(
                f"{what}: expected feature shape {arrays[0].shape[1:]} "
                f"(that of train_x), found {a.shape[1:]}"
            )
    if arrays[0].shape[0] == 0:
        raise ValueError("train_x is empty: cannot compute standardization statistics")
    if in_place:
        _check_writable_float32(arrays)
    mean, std = _mean_std(arrays[0])
    out = []
    for a in arrays:
        z = a if in_place else np.empty(a.shape, np.float32)
        for i in range(0, a.shape[0], _STATS_CHUNK):
            z[i : i + _STATS_CHUNK] = (a[i : i + _STATS_CHUNK] - mean) / std
        out.append(z)
    return mean.astype(np.float32), std.astype(np.float32), tuple(out)


def _check_writable_float32(arrays) -> None:
    for i, a in enumerate(arrays):
        if a.dtype != np.float32 or not a.flags.writeable:
            what = "train_x" if i == 0 else f"array {i} passed to standardize"
            raise ValueError(
                f"{what}: in_place=True needs a writable float32 array; got "
                f"{'a read-only ' if not a.flags.writeable else ''}{a.dtype} array"
            )


# --------------------------------------------------------------------------
# Splitting


def stratified_holdout(
    strata: np.ndarray, n_held: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held) with ``n_held`` held, stratified.

    Each stratum s of size n_s gets floor(n_held * n_s / n) held examples, and
    the leftover ones go to the strata with the largest remainders (ties to
    the smallest stratum value), computed in exact integer arithmetic.
    Which examples of a stratum are held is random (``rng``); both index
    arrays are returned shuffled.
    """
    n = len(strata)
    values, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    quota = n_held * counts
    share, remainder = quota // n, quota % n
    leftover = n_held - int(share.sum())
    order = np.lexsort((np.arange(len(values)), -remainder))
    share[order[:leftover]] += 1
    kept, held = [], []
    for s in range(len(values)):
        idx = rng.permutation(np.flatnonzero(inverse == s))
        held.append(idx[: share[s]])
        kept.append(idx[share[s] :])
    kept = rng.permutation(np.concatenate(kept))
    held = rng.permutation(np.concatenate(held))
    return kept, held


def holdout_count(n: int, fraction: float, what: str, name: str) -> int:
    """Number held out for ``fraction`` of ``n`` (rounded up); both sides >= 1."""
    n_held = math.ceil(fraction * n - 1e-9)
    if n_held < 1 or n_held >= n:
        raise ValueError(
            f"{name}: cannot hold out {fraction:g} of {n} examples for the {what} "
            f"split and keep both sides non-empty (use more examples or another "
            f"fraction)"
        )
    return n_held


def split_three(
    x, y, strata, *, test_fraction, val_fraction, rng, name
) -> tuple[Split, Split, Split]:
    """``(train, val, test)`` of ``(x, y)``: a stratified ``test_fraction`` held
    out first, then a stratified ``val_fraction`` of the rest (both drawn
    from ``rng``)."""
    n_test = holdout_count(len(y), test_fraction, "test", name)
    rest, test = stratified_holdout(strata, n_test, rng)
    n_val = holdout_count(len(rest), val_fraction, "validation", name)
    train, val = stratified_holdout(strata[rest], n_val, rng)
    train, val = rest[train], rest[val]
    return Split(x[train], y[train]), Split(x[val], y[val]), Split(x[test], y[test])


def make_dataset(
    name: str,
    train: Split,
    val: Split,
    test: Split,
    *,
    task: str,
    num_classes: int | None,
    image_shape: tuple[int, ...] | None = None,
    in_place: bool = False,
) -> Dataset:
    """Check, standardize and (for images) reshape to NHWC; ``in_place``:
    the splits' float32 features are the caller's to overwrite
    (:func:`standardize`)."""
    for split_name, split in (("train", train), ("val", val), ("test", test)):
        check_finite(split.x, f"{name} {split_name} features")
        check_finite(split.y, f"{name} {split_name} targets")
    mean, std, (xtr, xva, xte) = standardize(train.x, val.x, test.x, in_place=in_place)
    in_shape = tuple(train.x.shape[1:])
    if image_shape is not None:
        in_shape = image_shape
        xtr, xva, xte = (a.reshape(-1, *in_shape) for a in (xtr, xva, xte))
        mean, std = mean.reshape(in_shape), std.reshape(in_shape)
    if task == "classification":
        ys = [np.asarray(s.y, np.int32) for s in (train, val, test)]
    else:
        ys = [np.asarray(s.y, np.float32).reshape(-1, 1) for s in (train, val, test)]
    return Dataset(
        name=name,
        train=Split(xtr, ys[0]),
        val=Split(xva, ys[1]),
        test=Split(xte, ys[2]),
        task=task,
        num_classes=num_classes,
        in_shape=in_shape,
        feature_mean=mean,
        feature_std=std,
    )


def subsample_train(train: Split, n: int | None, seed: int, name: str) -> Split:
    """Keep a stratified random subset of ``n`` training examples."""
    if n is None:
        return train
    available = len(train.y)
    if n > available:
        raise ValueError(
            f"{name}: n={n} training examples requested, but only {available} "
            f"are available after the validation split"
        )
    if n == available:
        return train
    _, keep = stratified_holdout(train.y, n, np.random.default_rng(seed))
    return Split(train.x[keep], train.y[keep])
