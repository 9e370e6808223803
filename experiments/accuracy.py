"""Test accuracy of the default ``jaxbp train`` on digits, median over 5 seeds.

Runs the command line exactly as a user does (``jaxbp train --seed S``, all
other flags at their defaults, plus ``--model cnn`` for the CNN) and reports
each seed's test accuracy from its ``metrics.json`` and their median.

    python experiments/accuracy.py [--model mlp|cnn] [--quick] [--out DIR]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time

import _common

TARGET = {"mlp": 0.98, "cnn": 0.985}


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    model = "mlp"
    if "--model" in argv:
        i = argv.index("--model")
        model = argv[i + 1]
        del argv[i : i + 2]
    args = _common.parse_args(f"accuracy_{model}", __doc__.splitlines()[0], argv)
    seeds = range(2) if args.quick else range(5)
    extra = ["--epochs", "3"] if args.quick else []
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            command = [
                sys.executable,
                "-m",
                "jaxbp",
                "train",
                "--quiet",
                "--model",
                model,
                "--seed",
                str(seed),
                "--out",
                tmp,
                *extra,
            ]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds = time.perf_counter() - start
            with open(f"{tmp}/metrics.json") as f:
                metrics = json.load(f)
            runs.append(
                {
                    "seed": seed,
                    "test_accuracy": metrics["test_accuracy"],
                    "seconds": seconds,
                    "command": " ".join(command[1:]),
                }
            )
    median = statistics.median(r["test_accuracy"] for r in runs)
    results = {
        "model": model,
        "runs": runs,
        "median_test_accuracy": median,
        "target": TARGET[model],
        "meets_target": median >= TARGET[model],
    }
    _common.write_json(args, results)
    _common.print_table(
        ["seed", "test accuracy", "seconds"],
        [[r["seed"], r["test_accuracy"], r["seconds"]] for r in runs],
        title=f"jaxbp train --model {model} on digits",
    )
    print(f"median test accuracy {median:.4f} (target {TARGET[model]})")
    return results


if __name__ == "__main__":
    main()
