"""The one problem every peer trains: the digits, an MLP's initial weights, the batches.

Every contender of ``benchmarks/peers.py`` gets the same :class:`Problem`:

- the digits split of ``jaxbp.data.load("digits")`` (train 1,293, test 360
  examples, standardized with the training statistics), float32;
- the MLP 64-256-256-10 with ReLU between the dense layers and no dropout
  (so every library computes the same function), its initial weights those of
  ``jaxbp.mlp(SIZES).init`` under ``fit(seed=0)``'s init key, as a list of
  ``(w (n_in, n_out), b (n_out,))`` NumPy pairs;
- the batches of ``fit(seed=0)``: epoch ``e``'s rows of
  ``jaxbp.train.batch_schedule`` (40 batches of 32 training indices per epoch,
  the 13 left over by each epoch's permutation unused);
- softmax cross-entropy (mean over the batch) and Adam (learning rate 1e-3,
  β 0.9/0.999, ε 1e-8).

The fresh-process runs get it as a ``.npz`` file (:func:`save`, :func:`load`),
so a peer's process reads it with NumPy alone and imports no jax or jaxbp
it would not import on its own. This module imports NumPy only (jaxbp inside
:func:`make_problem`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

#: The model of the epoch and whole-process rows.
SIZES = (64, 256, 256, 10)
BATCH = 32
LEARNING_RATE = 1e-3
SEED = 0
#: The model and batch of the one-large-gradient row (and a small one for --quick).
GRADIENT_SIZES, GRADIENT_BATCH = (784, 1024, 1024, 10), 512
GRADIENT_SIZES_QUICK, GRADIENT_BATCH_QUICK = (784, 256, 256, 10), 128


@dataclasses.dataclass
class Problem:
    """Data, initial weights and batches of one comparison (NumPy arrays).

    ``indices[e]`` is epoch ``e + 1``'s ``(steps, batch)`` training indices;
    ``weights`` the dense layers' ``(w, b)``, ``w`` of shape ``(n_in, n_out)``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    weights: list[tuple[np.ndarray, np.ndarray]]
    indices: np.ndarray
    learning_rate: float = LEARNING_RATE

    @property
    def sizes(self) -> tuple[int, ...]:
        """The layer widths, ``(n_in, hidden..., n_out)``."""
        return (self.weights[0][0].shape[0], *(w.shape[1] for w, _ in self.weights))

    @property
    def batch_size(self) -> int:
        return int(self.indices.shape[-1])


def jaxbp_weights(params) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(w, b)`` pairs of a jaxbp MLP's params (its dense layers, in order)."""
    return [(np.asarray(p["w"]), np.asarray(p["b"])) for p in params if p != ()]


def make_problem(epochs: int, seed: int = SEED) -> Problem:
    """The digits, ``jaxbp.mlp(SIZES)``'s initial weights and ``epochs`` epochs
    of batches, exactly as ``jaxbp.train.fit(seed=seed, batch_size=BATCH)``
    draws them."""
    import jax

    import jaxbp
    from jaxbp import data
    from jaxbp.train import batch_schedule, train_keys

    digits = data.load("digits")
    init_key, _ = train_keys(jax.random.key(seed))
    params = jaxbp.mlp(list(SIZES)).init(init_key)
    n = digits.train.x.shape[0]
    schedule = batch_schedule(seed, n, BATCH, epochs)
    indices = np.asarray(schedule.indices).reshape(epochs, n // BATCH, BATCH)
    return Problem(
        x_train=np.asarray(digits.train.x, np.float32),
        y_train=np.asarray(digits.train.y, np.int32),
        x_test=np.asarray(digits.test.x, np.float32),
        y_test=np.asarray(digits.test.y, np.int32),
        weights=jaxbp_weights(params),
        indices=indices.astype(np.int32),
    )


def save(problem: Problem, path: str | Path) -> Path:
    """Write ``problem`` to an ``.npz`` file (read back by :func:`load`)."""
    arrays = {f.name: getattr(problem, f.name) for f in dataclasses.fields(Problem)}
    weights = arrays.pop("weights")
    for i, (w, b) in enumerate(weights):
        arrays[f"w{i}"], arrays[f"b{i}"] = w, b
    arrays["learning_rate"] = np.asarray(problem.learning_rate)
    np.savez(path, **arrays)
    return Path(path)


def load(path: str | Path) -> Problem:
    """The :class:`Problem` written by :func:`save`."""
    with np.load(path) as f:
        layers = sum(1 for k in f.files if k.startswith("w"))
        return Problem(
            x_train=f["x_train"],
            y_train=f["y_train"],
            x_test=f["x_test"],
            y_test=f["y_test"],
            weights=[(f[f"w{i}"], f[f"b{i}"]) for i in range(layers)],
            indices=f["indices"],
            learning_rate=float(f["learning_rate"]),
        )


def gradient_data(sizes, batch: int, seed: int = SEED):
    """``(weights, x, y)`` of the one-gradient row: ``jaxbp.mlp(sizes)``'s
    initial weights (as :func:`jaxbp_weights`), standard-normal float32 inputs
    and random integer labels (those of ``benchmarks.problems.mlp_problem``)."""
    from benchmarks.problems import mlp_problem

    _, params, x, y = mlp_problem(sizes, batch, seed=seed)
    return jaxbp_weights(params), np.asarray(x), np.asarray(y)
