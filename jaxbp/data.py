"""Datasets for training and experiments, as standardized numpy arrays.

``load(name, ...)`` returns a :class:`Dataset` with ``train``, ``val`` and
``test`` :class:`Split` s.  Everywhere:

* features ``x`` are float32; class labels ``y`` are int32 of shape ``(n,)``,
  regression targets are float32 of shape ``(n, 1)``;
* features are standardized per feature with the mean and standard deviation
  of the *training* split only (so nothing about val/test leaks into
  training); a constant training feature gets std 1.  The statistics are
  returned as ``Dataset.feature_mean`` / ``feature_std`` with shape
  ``in_shape``, so ``raw = x * feature_std + feature_mean``;
* splits are stratified by class (each class's count in a held-out split is
  the floor or ceiling of its proportional share), then shuffled;
* ``val_fraction`` is the fraction of the non-test data held out for
  validation.

Datasets (``DATASETS``):

``"digits"``
    The UCI ML hand-written digits (1,797 8x8 grey images, pixel values 0..16,
    10 classes), bundled with scikit-learn (``sklearn.datasets.load_digits``;
    no download).  Test split: a fixed stratified 20% (360 images), the same
    for every ``seed``; validation: a fixed stratified ``val_fraction`` of the
    remaining 1,437.
``"mnist"``, ``"fashion_mnist"``
    MNIST / Fashion-MNIST (28x28 grey images, 10 classes) read from IDX files
    in ``data_dir``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or with
    a ``.gz`` suffix (nothing is ever downloaded).  Test split: the t10k files;
    validation: a fixed stratified ``val_fraction`` of the training files.
    Pixels are divided by 255, then standardized.
Synthetic, 2-D features unless noted, generated with ``jax.random`` from
``jax.random.key(seed)`` (identical with or without ``jax_enable_x64``), split
20% test, then ``val_fraction`` of the rest for validation (72/8/20 with the
defaults), with classes balanced:

``"xor"``
    2 classes; points around the 4 corners (+-1, +-1) (equally many per corner)
    with gaussian noise of std ``noise``; the class is 1 when the two
    coordinates have opposite signs.  Not linearly separable (a linear
    classifier gets at most ~75%).
``"moons"``
    2 classes; two interleaving half circles (as ``sklearn.datasets.make_moons``,
    with angles drawn uniformly) plus gaussian noise of std ``noise``.
``"circles"``
    2 classes; concentric circles of radius 1 (class 0) and 0.5 (class 1),
    angles uniform, plus gaussian noise of std ``noise``.
``"spirals"``
    2 classes; a two-armed spiral, 1.5 turns per arm, radius growing linearly
    from 0 to 1, plus gaussian noise of std ``noise``.  Hard: needs a
    non-linear model, and the arms meet at the centre.
``"sine"``
    Regression, 1-D feature: x uniform in [-pi, pi], y = sin(x) + gaussian
    noise of std ``noise``, y of shape (n, 1).  Only x is standardized.
``"blobs"``
    3 classes; gaussian blobs centred on an equilateral triangle of radius 3,
    with per-coordinate std ``noise``, truncated at 3 std.  For
    ``noise <= 0.6`` (default 0.5) every point is closer to its own centre
    than to the others by construction, so the classes are linearly
    separable.

Default sizes and noise are in ``SYNTHETIC_DEFAULTS``.
"""

from __future__ import annotations

import importlib.util
import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp._idx import read_idx
from jaxbp.checks import is_int

__all__ = [
    "DATASETS",
    "IMAGE_DATASETS",
    "MNIST_FILES",
    "SYNTHETIC_DATASETS",
    "SYNTHETIC_DEFAULTS",
    "SYNTHETIC_TEST_FRACTION",
    "Dataset",
    "Split",
    "check_finite",
    "load",
    "read_idx",
    "standardize",
]


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


SYNTHETIC_DATASETS = ("xor", "moons", "circles", "spirals", "sine", "blobs")
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist")
DATASETS = IMAGE_DATASETS + SYNTHETIC_DATASETS

#: name -> (default number of examples n, default noise).
SYNTHETIC_DEFAULTS: dict[str, tuple[int, float]] = {
    "xor": (1000, 0.25),
    "moons": (1000, 0.1),
    "circles": (1000, 0.05),
    "spirals": (1000, 0.05),
    "sine": (1000, 0.1),
    "blobs": (1000, 0.5),
}
#: Fraction of a synthetic dataset held out as the test split.
SYNTHETIC_TEST_FRACTION = 0.2
#: Fraction of the digits held out (fixed) as the test split.
DIGITS_TEST_FRACTION = 0.2

#: The four MNIST-format files looked for in ``data_dir`` (each may be .gz).
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MNIST_IMAGE_MAGIC = 0x00000803  # uint8, 3-D
_MNIST_LABEL_MAGIC = 0x00000801  # uint8, 1-D
_MNIST_SIDE = 28

_FIXED_SPLIT_SEED = 0  # the real datasets' val/test splits never move
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


def standardize(train_x, *others):
    """Standardize features with statistics of ``train_x`` only.

    Statistics are per feature (over axis 0, any trailing shape), computed in
    float64 (population std, ``ddof=0``); a feature that is constant in
    ``train_x`` gets std 1, so it maps to 0 in the training data.

    Args:
      train_x: training features, shape ``(n, ...)`` with ``n >= 1``.
      *others: more arrays (validation, test, ...) with the same trailing
        shape, standardized with ``train_x``'s statistics.

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
    mean, std = _mean_std(arrays[0])
    out = []
    for a in arrays:
        z = np.empty(a.shape, np.float32)
        for i in range(0, a.shape[0], _STATS_CHUNK):
            z[i : i + _STATS_CHUNK] = (a[i : i + _STATS_CHUNK] - mean) / std
        out.append(z)
    return mean.astype(np.float32), std.astype(np.float32), tuple(out)


# --------------------------------------------------------------------------
# Splitting


def _stratified_holdout(
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


def _holdout_count(n: int, fraction: float, what: str, name: str) -> int:
    """Number held out for ``fraction`` of ``n`` (rounded up); both sides >= 1."""
    n_held = math.ceil(fraction * n - 1e-9)
    if n_held < 1 or n_held >= n:
        raise ValueError(
            f"{name}: cannot hold out {fraction:g} of {n} examples for the {what} "
            f"split and keep both sides non-empty (use more examples or another "
            f"fraction)"
        )
    return n_held


def _split_three(
    x, y, strata, *, test_fraction, val_fraction, rng, name
) -> tuple[Split, Split, Split]:
    n_test = _holdout_count(len(y), test_fraction, "test", name)
    rest, test = _stratified_holdout(strata, n_test, rng)
    n_val = _holdout_count(len(rest), val_fraction, "validation", name)
    train, val = _stratified_holdout(strata[rest], n_val, rng)
    train, val = rest[train], rest[val]
    return Split(x[train], y[train]), Split(x[val], y[val]), Split(x[test], y[test])


def _finish(
    name: str,
    train: Split,
    val: Split,
    test: Split,
    *,
    task: str,
    num_classes: int | None,
    image_shape: tuple[int, ...] | None = None,
) -> Dataset:
    """Check, standardize and (for images) reshape to NHWC."""
    for split_name, split in (("train", train), ("val", val), ("test", test)):
        check_finite(split.x, f"{name} {split_name} features")
        check_finite(split.y, f"{name} {split_name} targets")
    mean, std, (xtr, xva, xte) = standardize(train.x, val.x, test.x)
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


def _subsample_train(train: Split, n: int | None, seed: int, name: str) -> Split:
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
    _, keep = _stratified_holdout(train.y, n, np.random.default_rng(seed))
    return Split(train.x[keep], train.y[keep])


# --------------------------------------------------------------------------
# Real datasets


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the UCI digits bundled with scikit-learn: (1797, 64) float32
    pixel values 0..16 and (1797,) int32 classes.

    Read straight from the file scikit-learn ships and ``load_digits`` reads
    (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the class per
    row), found without importing scikit-learn, whose import takes ~2 s, a
    fifth of a whole ``jaxbp train`` run. ``load_digits`` itself is the
    fallback should a scikit-learn release move the file.
    """
    spec = importlib.util.find_spec("sklearn")
    roots = (spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int32)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.data, np.float32), np.asarray(bunch.target, np.int32)


def _load_digits(*, n, seed, val_fraction, images) -> Dataset:
    x, y = _digits_arrays()
    train, val, test = _split_three(
        x,
        y,
        y,
        test_fraction=DIGITS_TEST_FRACTION,
        val_fraction=val_fraction,
        rng=np.random.default_rng(_FIXED_SPLIT_SEED),
        name="digits",
    )
    train = _subsample_train(train, n, seed, "digits")
    return _finish(
        "digits",
        train,
        val,
        test,
        task="classification",
        num_classes=10,
        image_shape=(8, 8, 1) if images else None,
    )


def _find_mnist_file(data_dir: Path, base: str, name: str) -> Path:
    for candidate in (data_dir / base, data_dir / (base + ".gz")):
        if candidate.is_file():
            return candidate
    looked_for = ", ".join(f"{f} or {f}.gz" for f in MNIST_FILES.values())
    raise ValueError(
        f"{name}: {data_dir / base} (or {base}.gz) not found; the data directory "
        f"{data_dir} must contain the MNIST-format files: {looked_for}"
    )


def _read_mnist_pair(
    data_dir: Path, which: str, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check the images and labels of 'train' or 'test'."""
    image_path = _find_mnist_file(data_dir, MNIST_FILES[f"{which}_images"], name)
    label_path = _find_mnist_file(data_dir, MNIST_FILES[f"{which}_labels"], name)
    images = read_idx(image_path, expected_magic=_MNIST_IMAGE_MAGIC)
    labels = read_idx(label_path, expected_magic=_MNIST_LABEL_MAGIC)
    if images.shape[1:] != (_MNIST_SIDE, _MNIST_SIDE):
        raise ValueError(
            f"{image_path}: expected {_MNIST_SIDE}x{_MNIST_SIDE} images, found "
            f"{images.shape[1]}x{images.shape[2]}"
        )
    if len(labels) != len(images):
        raise ValueError(
            f"{label_path}: expected {len(images)} labels (one per image in "
            f"{image_path}), found {len(labels)}"
        )
    if len(labels) == 0:
        raise ValueError(f"{image_path}: expected at least one image, found 0")
    if labels.max() > 9:
        i = int(np.argmax(labels > 9))
        raise ValueError(
            f"{label_path}: expected labels in 0..9, found {int(labels[i])} "
            f"at index {i}"
        )
    return images, labels


def _load_mnist(name, *, data_dir, n, seed, val_fraction, images) -> Dataset:
    if data_dir is None:
        raise ValueError(
            f"{name}: data_dir is required: the directory holding "
            f"{', '.join(MNIST_FILES.values())} (plain or .gz); nothing is downloaded"
        )
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise ValueError(
            f"{name}: data directory {data_dir} does not exist or is not a "
            f"directory; it must contain {', '.join(MNIST_FILES.values())} "
            f"(plain or .gz)"
        )
    train_images, train_labels = _read_mnist_pair(data_dir, "train", name)
    test_images, test_labels = _read_mnist_pair(data_dir, "test", name)

    def flat(a):
        return a.reshape(len(a), -1).astype(np.float32) / np.float32(255.0)

    x_train, y_train = flat(train_images), train_labels.astype(np.int32)
    n_val = _holdout_count(len(y_train), val_fraction, "validation", name)
    rng = np.random.default_rng(_FIXED_SPLIT_SEED)
    tr, va = _stratified_holdout(y_train, n_val, rng)
    train = Split(x_train[tr], y_train[tr])
    val = Split(x_train[va], y_train[va])
    test = Split(flat(test_images), test_labels.astype(np.int32))
    train = _subsample_train(train, n, seed, name)
    return _finish(
        name,
        train,
        val,
        test,
        task="classification",
        num_classes=10,
        image_shape=(_MNIST_SIDE, _MNIST_SIDE, 1) if images else None,
    )


# --------------------------------------------------------------------------
# Synthetic datasets (jax.random, then numpy float32)


def _balanced_labels(n: int, k: int) -> np.ndarray:
    """``n`` labels in ``0..k-1``, as equal counts as possible, in order."""
    return (np.arange(n) * k // n).astype(np.int32)


def _xor(key, n, noise):
    corner = np.arange(n) % 4  # balanced over the 4 corners
    signs = np.array([[-1, -1], [1, 1], [-1, 1], [1, -1]], np.float32)
    y = (corner >= 2).astype(np.int32)  # opposite signs -> class 1
    x = jnp.asarray(signs[corner]) + noise * jax.random.normal(key, (n, 2), jnp.float32)
    return x, y


def _moons(key, n, noise):
    k_t, k_noise = jax.random.split(key)
    y = _balanced_labels(n, 2)
    t = jax.random.uniform(k_t, (n,), jnp.float32, 0.0, jnp.pi)
    upper = jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], axis=1)
    x = jnp.where(jnp.asarray(y)[:, None] == 0, upper, lower)
    return x + noise * jax.random.normal(k_noise, (n, 2), jnp.float32), y


def _circles(key, n, noise):
    k_t, k_noise = jax.random.split(key)
    y = _balanced_labels(n, 2)
    t = jax.random.uniform(k_t, (n,), jnp.float32, 0.0, 2 * jnp.pi)
    radius = jnp.where(jnp.asarray(y) == 0, 1.0, 0.5).astype(jnp.float32)
    x = radius[:, None] * jnp.stack([jnp.cos(t), jnp.sin(t)], axis=1)
    return x + noise * jax.random.normal(k_noise, (n, 2), jnp.float32), y


def _spirals(key, n, noise, turns=1.5):
    k_t, k_noise = jax.random.split(key)
    y = _balanced_labels(n, 2)
    r = jax.random.uniform(k_t, (n,), jnp.float32)
    theta = 2 * jnp.pi * turns * r + jnp.pi * jnp.asarray(y, jnp.float32)
    x = r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], axis=1)
    return x + noise * jax.random.normal(k_noise, (n, 2), jnp.float32), y


def _sine(key, n, noise):
    k_x, k_noise = jax.random.split(key)
    x = jax.random.uniform(k_x, (n, 1), jnp.float32, -jnp.pi, jnp.pi)
    y = jnp.sin(x) + noise * jax.random.normal(k_noise, (n, 1), jnp.float32)
    return x, y


def _blobs(key, n, noise, radius=3.0):
    y = _balanced_labels(n, 3)
    angles = np.pi / 2 + 2 * np.pi * np.arange(3) / 3
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    z = jax.random.truncated_normal(key, -3.0, 3.0, (n, 2), jnp.float32)
    return jnp.asarray(centers[y], jnp.float32) + noise * z, y


_GENERATORS: dict[str, tuple[Callable, int | None]] = {
    # name -> (generator(key, n, noise) -> (x, y), num_classes or None)
    "xor": (_xor, 2),
    "moons": (_moons, 2),
    "circles": (_circles, 2),
    "spirals": (_spirals, 2),
    "sine": (_sine, None),
    "blobs": (_blobs, 3),
}


def _load_synthetic(name, *, n, seed, val_fraction, noise) -> Dataset:
    default_n, default_noise = SYNTHETIC_DEFAULTS[name]
    n = default_n if n is None else n
    noise = default_noise if noise is None else noise
    generate, num_classes = _GENERATORS[name]
    k_data, k_split = jax.random.split(jax.random.key(seed))
    x, y = generate(k_data, n, noise)
    x = np.asarray(x, np.float32)
    if num_classes is None:
        y = np.asarray(y, np.float32).reshape(n, 1)
        strata = np.zeros(n, np.int32)
    else:
        y = np.asarray(y, np.int32)
        strata = y
    # The split is drawn from the same key: seed -> data and split.
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_split)))
    train, val, test = _split_three(
        x,
        y,
        strata,
        test_fraction=SYNTHETIC_TEST_FRACTION,
        val_fraction=val_fraction,
        rng=rng,
        name=name,
    )
    return _finish(
        name,
        train,
        val,
        test,
        task="classification" if num_classes else "regression",
        num_classes=num_classes,
    )


# --------------------------------------------------------------------------
# Public entry point


def load(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    seed: int = 0,
    n: int | None = None,
    val_fraction: float = 0.1,
    images: bool = False,
    noise: float | None = None,
) -> Dataset:
    """Load a dataset by name (see the module docstring for each one).

    Args:
      name: one of ``DATASETS``.
      data_dir: directory with the IDX files, for ``"mnist"`` and
        ``"fashion_mnist"`` (required there, ignored elsewhere).
      seed: an integer in [0, 2**32).  For synthetic datasets, the
        ``jax.random.key(seed)`` that generates the data and its split.  For
        the real datasets the val/test splits are fixed and ``seed`` only
        picks the training subset when ``n`` is given.
      n: synthetic datasets: total number of examples (default in
        ``SYNTHETIC_DEFAULTS``).  Real datasets: keep only a stratified random
        subset of ``n`` training examples (val and test are unchanged); the
        standardization statistics come from that subset.
      val_fraction: fraction of the non-test data held out for validation, in
        (0, 1); rounded up to whole examples.
      images: for the image datasets, give ``x`` as NHWC images
        ``(n, H, W, 1)`` instead of flat vectors ``(n, H*W)``.
      noise: synthetic datasets only: the noise level (std of the gaussian
        noise; default in ``SYNTHETIC_DEFAULTS``).

    Raises:
      ValueError: unknown ``name`` (the message lists ``DATASETS``), bad
        arguments, missing or corrupt data files, non-finite data.
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}"
        )
    if not is_int(seed) or not 0 <= seed < 2**32:
        # jax.random.key maps seeds outside uint32 differently with x64 on/off.
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if n is not None and (not is_int(n) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not 0 < val_fraction < 1
    ):
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not isinstance(images, (bool, np.bool_)):
        # ValueError like every other argument problem, so callers catch one type.
        raise ValueError(f"images must be True or False, got {images!r}")  # noqa: TRY004
    n = None if n is None else int(n)
    seed, val_fraction = int(seed), float(val_fraction)

    if name in SYNTHETIC_DATASETS:
        if images:
            raise ValueError(
                f"images=True applies only to the image datasets "
                f"{', '.join(IMAGE_DATASETS)}, not to {name!r}"
            )
        if noise is not None and (
            isinstance(noise, bool)
            or not isinstance(noise, numbers.Real)
            or not (math.isfinite(noise) and noise >= 0)
        ):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
        return _load_synthetic(
            name,
            n=n,
            seed=seed,
            val_fraction=val_fraction,
            noise=None if noise is None else float(noise),
        )

    if noise is not None:
        raise ValueError(
            f"noise applies only to the synthetic datasets "
            f"{', '.join(SYNTHETIC_DATASETS)}, not to {name!r}"
        )
    if name == "digits":
        return _load_digits(
            n=n, seed=seed, val_fraction=val_fraction, images=bool(images)
        )
    return _load_mnist(
        name,
        data_dir=data_dir,
        n=n,
        seed=seed,
        val_fraction=val_fraction,
        images=bool(images),
    )
