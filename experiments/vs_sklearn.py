"""Wall time of a whole ``jaxbp train`` process against scikit-learn's ``MLPClassifier.fit``.

Both train the same network on the same digits split: the same hidden sizes,
epochs, batch size and optimizer (Adam, the same learning rate, no early
stopping: scikit-learn runs every epoch because ``n_iter_no_change`` is set to
the number of epochs). ``jaxbp train`` is timed as a fresh process, start-up,
imports, data loading, compilation, training, evaluation and writing its
metrics and plot included, twice: with JAX's persistent compilation cache
(``jaxbp train``'s default; warm after the first run) and without it (every
run compiles from scratch, ``JAXBP_COMPILATION_CACHE=0``); scikit-learn only
inside ``fit`` (its imports and data loading are not counted). jaxbp's default
MLP also has dropout, which scikit-learn's lacks. The contenders alternate, and
the medians are compared.

    python experiments/vs_sklearn.py [--quick] [--out DIR]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import _common

HIDDEN = (256, 256)  # the defaults of jaxbp train
BATCH = 32
LR = 1e-3


def time_jaxbp(epochs: int, seed: int, out: str, cache: bool) -> tuple[float, float]:
    """(seconds, test accuracy) of one whole ``jaxbp train`` process."""
    import json
    import os

    command = [
        sys.executable,
        "-m",
        "jaxbp",
        "train",
        "--quiet",
        "--epochs",
        str(epochs),
        "--hidden",
        ",".join(map(str, HIDDEN)),
        "--batch-size",
        str(BATCH),
        "--optimizer",
        "adam",
        "--lr",
        str(LR),
        "--seed",
        str(seed),
        "--out",
        out,
    ]
    env = {**os.environ, "JAXBP_COMPILATION_CACHE": "1" if cache else "0"}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    with open(f"{out}/metrics.json") as f:
        return seconds, json.load(f)["test_accuracy"]


def time_sklearn(data, epochs: int, seed: int) -> tuple[float, float]:
    """(seconds, test accuracy) of ``MLPClassifier.fit`` with the same settings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(
        HIDDEN,
        solver="adam",
        learning_rate_init=LR,
        batch_size=BATCH,
        max_iter=epochs,
        n_iter_no_change=epochs,
        tol=0.0,
        alpha=0.0,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(data.train.x, data.train.y)
        seconds = time.perf_counter() - start
    return seconds, clf.score(data.test.x, data.test.y)


def main(argv=None) -> dict:
    args = _common.parse_args("vs_sklearn", __doc__.splitlines()[0], argv)
    from jaxbp import data as datasets

    data = datasets.load("digits")
    epochs, repeats = (10, 2) if args.quick else (200, 3)
    jaxbp_runs, cold_runs, sklearn_runs = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(repeats):  # alternate the contenders
            jaxbp_runs.append(time_jaxbp(epochs, seed, tmp, cache=True))
            cold_runs.append(time_jaxbp(epochs, seed, tmp, cache=False))
            sklearn_runs.append(time_sklearn(data, epochs, seed))
    jaxbp_s = statistics.median(s for s, _ in jaxbp_runs)
    cold_s = statistics.median(s for s, _ in cold_runs)
    sklearn_s = statistics.median(s for s, _ in sklearn_runs)
    results = {
        "epochs": epochs,
        "hidden": HIDDEN,
        "batch_size": BATCH,
        "learning_rate": LR,
        "jaxbp_process_seconds": [s for s, _ in jaxbp_runs],
        "jaxbp_no_cache_process_seconds": [s for s, _ in cold_runs],
        "median_jaxbp_no_cache_seconds": cold_s,
        "jaxbp_no_cache_over_sklearn": cold_s / sklearn_s,
        "sklearn_fit_seconds": [s for s, _ in sklearn_runs],
        "jaxbp_test_accuracy": [a for _, a in jaxbp_runs],
        "sklearn_test_accuracy": [a for _, a in sklearn_runs],
        "median_jaxbp_seconds": jaxbp_s,
        "median_sklearn_seconds": sklearn_s,
        "jaxbp_over_sklearn": jaxbp_s / sklearn_s,
    }
    _common.write_json(args, results)
    _common.print_table(
        ["contender", "median seconds", "median test accuracy"],
        [
            [
                "jaxbp train (whole process)",
                jaxbp_s,
                statistics.median(a for _, a in jaxbp_runs),
            ],
            [
                "jaxbp train, no compilation cache",
                cold_s,
                statistics.median(a for _, a in cold_runs),
            ],
            [
                "sklearn MLPClassifier.fit",
                sklearn_s,
                statistics.median(a for _, a in sklearn_runs),
            ],
        ],
        title=f"digits, {'-'.join(map(str, HIDDEN))} relu, Adam lr {LR}, batch {BATCH}, "
        f"{epochs} epochs, {repeats} alternating runs each",
    )
    print(
        f"jaxbp / sklearn wall time: {jaxbp_s / sklearn_s:.3f} "
        f"(no compilation cache: {cold_s / sklearn_s:.3f})"
    )
    return results


if __name__ == "__main__":
    main()
