"""One contender's whole training run, as a user's script: the child process of
``benchmarks/peers_process.py``.

``python benchmarks/peers_script.py LIBRARY PROBLEM.npz EPOCHS`` reads the
problem (:mod:`benchmarks.peers_problem`, NumPy only), trains ``LIBRARY``'s
model on it for ``EPOCHS`` epochs (:mod:`benchmarks.peers_LIBRARY`'s
``make_trainer``, the problem's batches), and prints one JSON line with the
test accuracy. The process imports only that library (``fit``: jaxbp, which
loads the digits itself, as a ``fit`` script does, and ignores the file).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

#: The libraries a script can train with (``fit``: ``jaxbp.train.fit``).
LIBRARIES = ("fit", "jaxbp", "jax", "flax", "equinox", "torch", "sklearn")


def train(library: str, path: str, epochs: int) -> float:
    """Train ``library``'s contender for ``epochs`` epochs; its test accuracy."""
    from benchmarks import peers_problem

    if library == "fit":
        from benchmarks import peers_jaxbp

        return peers_jaxbp.fit_run(
            epochs, peers_problem.BATCH, peers_problem.LEARNING_RATE
        )
    problem = peers_problem.load(path)
    module = importlib.import_module(f"benchmarks.peers_{library}")
    trainer = module.make_trainer(problem)
    for epoch in range(epochs):
        trainer.epoch(problem.indices[epoch])
    return trainer.accuracy(problem.x_test, problem.y_test)


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 3 or args[0] not in LIBRARIES or not args[2].isdigit():
        print(
            f"usage: peers_script.py {{{','.join(LIBRARIES)}}} PROBLEM.npz EPOCHS",
            file=sys.stderr,
        )
        return 2
    accuracy = train(args[0], args[1], int(args[2]))
    print(json.dumps({"test_accuracy": accuracy}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
