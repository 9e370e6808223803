"""scikit-learn's ``MLPClassifier``, one epoch per ``partial_fit``.

``MLPClassifier((256, 256), solver="adam", learning_rate_init=1e-3,
batch_size=32, alpha=0, shuffle=False)``: ``partial_fit`` on the epoch's
examples in the order of its batches runs exactly the problem's 40 steps of
32 (its ``gen_batches`` cuts them in order). Its weights are set to the
problem's after a first ``partial_fit`` has created them (scikit-learn has no
argument for initial weights), and its Adam state is reset then. Float32
throughout (scikit-learn keeps float32 inputs' dtype). Its Adam divides by
``sqrt(v) + ε`` with the bias corrections folded into the learning rate, a
difference from optax's and PyTorch's of order ε. scikit-learn reports one
loss per epoch (the mean over its batches), so its epoch gives one loss.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.neural_network import MLPClassifier


def classifier(problem) -> MLPClassifier:
    """The classifier with the problem's initial weights and a fresh Adam."""
    clf = MLPClassifier(
        problem.sizes[1:-1],
        solver="adam",
        learning_rate_init=problem.learning_rate,
        batch_size=problem.batch_size,
        alpha=0.0,
        shuffle=False,
        random_state=0,
    )
    batch = problem.indices[0, 0]
    clf.partial_fit(
        problem.x_train[batch], problem.y_train[batch], classes=np.arange(10)
    )
    clf.coefs_ = [np.array(w, np.float32) for w, _ in problem.weights]
    clf.intercepts_ = [np.array(b, np.float32) for _, b in problem.weights]
    del clf._optimizer  # a fresh Adam on the first epoch, as the other peers
    return clf


class Trainer:
    def __init__(self, problem):
        self.clf = classifier(problem)
        self.x, self.y = problem.x_train, problem.y_train

    def epoch(self, indices) -> np.ndarray:
        """``partial_fit`` on the examples of ``indices``, batch by batch in
        order; the epoch's mean loss."""
        order = np.asarray(indices).reshape(-1)
        self.clf.partial_fit(self.x[order], self.y[order])
        return np.asarray([self.clf.loss_])

    def accuracy(self, x, y) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(self.clf.score(x, y))


def make_trainer(problem) -> Trainer:
    return Trainer(problem)


def version() -> str:
    import sklearn

    return sklearn.__version__
