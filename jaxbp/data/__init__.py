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

Datasets (``DATASETS``), one module each:

``"digits"`` (:mod:`jaxbp.data.digits`)
    The UCI hand-written digits scikit-learn ships (8x8 images, 10 classes);
    fixed test and validation splits.
``"mnist"``, ``"fashion_mnist"`` (:mod:`jaxbp.data.mnist`)
    28x28 images, 10 classes, read from IDX files in ``data_dir``
    (:mod:`jaxbp.data.idx` validates them); nothing is downloaded.
``"xor"``, ``"moons"``, ``"circles"``, ``"spirals"``, ``"sine"``, ``"blobs"`` (:mod:`jaxbp.data.synthetic`)
    Generated from ``jax.random.key(seed)``; ``sine`` is a regression.

Splitting and standardizing are in :mod:`jaxbp.data.splits`. This package
imports nothing of jaxbp but :mod:`jaxbp.checks`.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from jaxbp.checks import check_int, check_seed, is_finite_number
from jaxbp.data import text
from jaxbp.data.digits import DIGITS_TEST_FRACTION, load_digits_dataset
from jaxbp.data.idx import read_idx, write_idx
from jaxbp.data.mnist import MNIST_FILES, load_mnist_dataset
from jaxbp.data.splits import Dataset, Split, check_finite, standardize
from jaxbp.data.synthetic import (
    SYNTHETIC_DATASETS,
    SYNTHETIC_DEFAULTS,
    SYNTHETIC_TEST_FRACTION,
    load_synthetic_dataset,
)

__all__ = [
    "DATASETS",
    "DIGITS_TEST_FRACTION",
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
    "text",
    "write_idx",
]

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist")
#: The datasets read from IDX files in a ``data_dir``.
FILE_DATASETS = ("mnist", "fashion_mnist")
DATASETS = IMAGE_DATASETS + SYNTHETIC_DATASETS


def _check_arguments(name, seed, n, val_fraction, images, noise) -> None:
    """Raise a ValueError naming the first bad argument of :func:`load`."""
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; valid names are: {', '.join(DATASETS)}"
        )
    # jax.random.key maps seeds outside uint32 differently with x64 on/off.
    check_seed(seed)
    check_int("n", n, 1, allow_none=True)
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, numbers.Real)
        or not 0 < val_fraction < 1
    ):
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not isinstance(images, (bool, np.bool_)):
        # ValueError like every other argument problem, so callers catch one type.
        raise ValueError(f"images must be True or False, got {images!r}")  # noqa: TRY004
    if name in SYNTHETIC_DATASETS:
        if images:
            raise ValueError(
                f"images=True applies only to the image datasets "
                f"{', '.join(IMAGE_DATASETS)}, not to {name!r}"
            )
        if noise is not None and not (is_finite_number(noise) and noise >= 0):
            raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    elif noise is not None:
        raise ValueError(
            f"noise applies only to the synthetic datasets "
            f"{', '.join(SYNTHETIC_DATASETS)}, not to {name!r}"
        )


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
    """Load a dataset by name (see the module docstring and each dataset's module).

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
    _check_arguments(name, seed, n, val_fraction, images, noise)
    n = None if n is None else int(n)
    seed, val_fraction, images = int(seed), float(val_fraction), bool(images)
    if name in SYNTHETIC_DATASETS:
        return load_synthetic_dataset(
            name,
            n=n,
            seed=seed,
            val_fraction=val_fraction,
            noise=None if noise is None else float(noise),
        )
    if name == "digits":
        return load_digits_dataset(
            n=n, seed=seed, val_fraction=val_fraction, images=images
        )
    return load_mnist_dataset(
        name,
        data_dir=data_dir,
        n=n,
        seed=seed,
        val_fraction=val_fraction,
        images=images,
    )
