"""The UCI ML hand-written digits, as scikit-learn ships them (no download).

1,797 8x8 grey images, pixel values 0..16, 10 classes
(``sklearn.datasets.load_digits``). Test split: a fixed stratified 20%
(360 images), the same for every ``seed``; validation: a fixed stratified
``val_fraction`` of the remaining 1,437.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from jaxbp.data.splits import (
    FIXED_SPLIT_SEED,
    Dataset,
    make_dataset,
    split_three,
    subsample_train,
)

#: Fraction of the digits held out (fixed) as the test split.
DIGITS_TEST_FRACTION = 0.2


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the UCI digits bundled with scikit-learn: (1797, 64) float32
    pixel values 0..16 and (1797,) int32 classes.

    Read straight from the file scikit-learn ships and ``load_digits`` reads
    (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the class per
    row), found without importing scikit-learn, whose import is a large part
    of a whole ``jaxbp train`` run. ``load_digits`` itself is the fallback
    should a scikit-learn release move the file.
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


def load_digits_dataset(*, n, seed, val_fraction, images) -> Dataset:
    """The digits :class:`Dataset` (arguments as :func:`jaxbp.data.load`'s)."""
    x, y = digits_arrays()
    train, val, test = split_three(
        x,
        y,
        y,
        test_fraction=DIGITS_TEST_FRACTION,
        val_fraction=val_fraction,
        rng=np.random.default_rng(FIXED_SPLIT_SEED),
        name="digits",
    )
    train = subsample_train(train, n, seed, "digits")
    return make_dataset(
        "digits",
        train,
        val,
        test,
        task="classification",
        num_classes=10,
        image_shape=(8, 8, 1) if images else None,
    )
