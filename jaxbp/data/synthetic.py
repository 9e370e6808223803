"""Synthetic datasets, generated with ``jax.random`` from ``jax.random.key(seed)``.

The same arrays with or without ``jax_enable_x64``. 2-D features unless noted;
split 20% test, then ``val_fraction`` of the rest for validation (72/8/20 with
the defaults), stratified by class, with classes balanced. Default sizes and
noise are in ``SYNTHETIC_DEFAULTS``.

``"xor"``
    2 classes; points around the 4 corners (+-1, +-1) (equally many per corner)
    with gaussian noise of std ``noise``; the class is 1 when the two
    coordinates have opposite signs. Not linearly separable (a linear
    classifier gets at most ~75%).
``"moons"``
    2 classes; two interleaving half circles (as ``sklearn.datasets.make_moons``,
    with angles drawn uniformly) plus gaussian noise of std ``noise``.
``"circles"``
    2 classes; concentric circles of radius 1 (class 0) and 0.5 (class 1),
    angles uniform, plus gaussian noise of std ``noise``.
``"spirals"``
    2 classes; a two-armed spiral, 1.5 turns per arm, radius growing linearly
    from 0 to 1, plus gaussian noise of std ``noise``. Hard: needs a
    non-linear model, and the arms meet at the centre.
``"sine"``
    Regression, 1-D feature: x uniform in [-pi, pi], y = sin(x) + gaussian
    noise of std ``noise``, y of shape (n, 1). Only x is standardized.
``"blobs"``
    3 classes; gaussian blobs centred on an equilateral triangle of radius 3,
    with per-coordinate std ``noise``, truncated at 3 std. For
    ``noise <= 0.6`` (default 0.5) every point is closer to its own centre
    than to the others by construction, so the classes are linearly
    separable.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.data.splits import Dataset, make_dataset, split_three

SYNTHETIC_DATASETS = ("xor", "moons", "circles", "spirals", "sine", "blobs")

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


def load_synthetic_dataset(name, *, n, seed, val_fraction, noise) -> Dataset:
    """The synthetic :class:`Dataset` ``name`` (arguments as
    :func:`jaxbp.data.load`'s; ``n`` and ``noise`` None for the defaults)."""
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
    train, val, test = split_three(
        x,
        y,
        strata,
        test_fraction=SYNTHETIC_TEST_FRACTION,
        val_fraction=val_fraction,
        rng=rng,
        name=name,
    )
    return make_dataset(
        name,
        train,
        val,
        test,
        task="classification" if num_classes else "regression",
        num_classes=num_classes,
    )
