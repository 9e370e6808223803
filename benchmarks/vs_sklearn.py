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

    python benchmarks/vs_sklearn.py [--quick] [--out DIR]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from benchmarks import report

HIDDEN = (256, 256)  # the defaults of jaxbp train
BATCH = 32
LR = 1e-3


def time_jaxbp(epochs: int, seed: int, out: str, cache: bool) -> tuple[float, float]:
    """(seconds, test accuracy) of one whole ``jaxbp train`` process."""
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
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command[1:])}` exited with {done.returncode}:\n{done.stderr}"
        )
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


def alternating_runs(data, epochs: int, repeats: int) -> dict[str, list]:
    """``repeats`` rounds of the three contenders, one after another (so a
    drift of the machine falls on all three): (seconds, test accuracy) each."""
    runs = {"jaxbp": [], "jaxbp_no_cache": [], "sklearn": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(repeats):
            runs["jaxbp"].append(time_jaxbp(epochs, seed, tmp, cache=True))
            runs["jaxbp_no_cache"].append(time_jaxbp(epochs, seed, tmp, cache=False))
            runs["sklearn"].append(time_sklearn(data, epochs, seed))
    return runs


def summarize(runs: dict[str, list], epochs: int) -> dict:
    """The JSON results: every run's seconds and accuracy, medians, ratios."""
    median = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
    return {
        "epochs": epochs,
        "hidden": HIDDEN,
        "batch_size": BATCH,
        "learning_rate": LR,
        "jaxbp_process_seconds": [s for s, _ in runs["jaxbp"]],
        "jaxbp_no_cache_process_seconds": [s for s, _ in runs["jaxbp_no_cache"]],
        "median_jaxbp_no_cache_seconds": median["jaxbp_no_cache"],
        "jaxbp_no_cache_over_sklearn": median["jaxbp_no_cache"] / median["sklearn"],
        "sklearn_fit_seconds": [s for s, _ in runs["sklearn"]],
        "jaxbp_test_accuracy": [a for _, a in runs["jaxbp"]],
        "sklearn_test_accuracy": [a for _, a in runs["sklearn"]],
        "median_jaxbp_seconds": median["jaxbp"],
        "median_sklearn_seconds": median["sklearn"],
        "jaxbp_over_sklearn": median["jaxbp"] / median["sklearn"],
    }


def print_summary(runs: dict[str, list], results: dict, repeats: int) -> None:
    labels = {
        "jaxbp": "jaxbp train (whole process)",
        "jaxbp_no_cache": "jaxbp train, no compilation cache",
        "sklearn": "sklearn MLPClassifier.fit",
    }
    rows = [
        [
            label,
            statistics.median(s for s, _ in runs[k]),
            statistics.median(a for _, a in runs[k]),
        ]
        for k, label in labels.items()
    ]
    report.print_table(
        ["contender", "median seconds", "median test accuracy"],
        rows,
        title=f"digits, {'-'.join(map(str, HIDDEN))} relu, Adam lr {LR}, "
        f"batch {BATCH}, {results['epochs']} epochs, {repeats} alternating runs each",
    )
    print(
        f"jaxbp / sklearn wall time: {results['jaxbp_over_sklearn']:.3f} "
        f"(no compilation cache: {results['jaxbp_no_cache_over_sklearn']:.3f})"
    )


def main(argv=None) -> int:
    """Time the contenders, print the table, write the JSON file."""
    args = report.parse_args("vs_sklearn", __doc__.splitlines()[0], argv)
    from jaxbp import data as datasets

    epochs, repeats = (10, 2) if args.quick else (200, 3)
    runs = alternating_runs(datasets.load("digits"), epochs, repeats)
    results = summarize(runs, epochs)
    payload = {"benchmark": args.name, "quick": args.quick, **results}
    print(f"wrote {report.write_json(args.path, payload)}")
    print_summary(runs, results, repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
