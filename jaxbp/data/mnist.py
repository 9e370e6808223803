"""MNIST and Fashion-MNIST from IDX files in a directory (nothing is downloaded).

28x28 grey images, 10 classes, read from ``data_dir``:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or with a
``.gz`` suffix. Test split: the t10k files; validation: a fixed stratified
``val_fraction`` of the training files. Pixels are divided by 255, then
standardized. Every problem with the files is a ``ValueError`` naming the
file (see :mod:`jaxbp.data.idx`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxbp.data.idx import read_idx
from jaxbp.data.splits import (
    FIXED_SPLIT_SEED,
    Dataset,
    Split,
    holdout_count,
    make_dataset,
    stratified_holdout,
    subsample_train,
)

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


def _check_data_dir(data_dir, name: str) -> Path:
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
    return data_dir


def _flat(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 -> (n, 784) float32 in [0, 1] (divided in place: one
    float copy of the images, not two)."""
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= np.float32(255.0)
    return x


def load_mnist_dataset(name, *, data_dir, n, seed, val_fraction, images) -> Dataset:
    """The MNIST-format :class:`Dataset` ``name`` (``"mnist"`` or
    ``"fashion_mnist"``; arguments as :func:`jaxbp.data.load`'s).

    The splits are cut from the uint8 images and only then made float (the
    same numbers as cutting the float images, with a quarter of the memory in
    between)."""
    data_dir = _check_data_dir(data_dir, name)
    train_images, train_labels = _read_mnist_pair(data_dir, "train", name)
    test_images, test_labels = _read_mnist_pair(data_dir, "test", name)

    y_train = train_labels.astype(np.int32)
    n_val = holdout_count(len(y_train), val_fraction, "validation", name)
    rng = np.random.default_rng(FIXED_SPLIT_SEED)
    tr, va = stratified_holdout(y_train, n_val, rng)
    train = subsample_train(Split(train_images[tr], y_train[tr]), n, seed, name)
    train = Split(_flat(train.x), train.y)
    val = Split(_flat(train_images[va]), y_train[va])
    test = Split(_flat(test_images), test_labels.astype(np.int32))
    del train_images, test_images
    return make_dataset(
        name,
        train,
        val,
        test,
        task="classification",
        num_classes=10,
        image_shape=(_MNIST_SIDE, _MNIST_SIDE, 1) if images else None,
        in_place=True,  # the float images above are this function's own
    )
