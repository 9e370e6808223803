"""Peak memory and time of one ``jaxbp train`` epoch on MNIST-size data.

``python benchmarks/mnist_memory.py [--quick] [--out DIR] [--data-dir DIR]
[--train-size N] [--test-size N]`` writes MNIST-format IDX files (28x28
uint8 images, labels 0-9; 60,000 training and 10,000 test images, or
6,000 + 1,000 with ``--quick``) into a temporary directory, or into
``--data-dir`` to keep them (files already there with the right counts are
reused). Nothing is downloaded: each class is a fixed smooth pattern, and
each image its class's pattern shifted by up to three pixels, with a random
contrast and pixel noise, so a model learns something in one epoch.

It then runs ``jaxbp train --dataset mnist --data-dir DIR --epochs 1 --quiet
--out TMP`` with the default MLP and with ``--model cnn``, each in a fresh
process, and reports per run the child's peak resident memory (the VmHWM
of its own address space, :func:`run_measured`), the whole process's wall time and
``metrics.json``'s ``train_seconds`` (the epoch, its compilation and its
validation pass) and test accuracy. The target is a peak RSS of at most
2 GiB for both. It prints the table and writes ``DIR/mnist_memory.json``
(:mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository root

import numpy as np

from benchmarks import benchmark, report
from jaxbp.data import MNIST_FILES, read_idx, write_idx

#: (training images, test images) of the full and the quick run.
FULL_SIZES = (60_000, 10_000)
QUICK_SIZES = (6_000, 1_000)
#: The peak resident memory a run may reach (MiB).
LIMIT_MIB = 2048
#: The runs: name -> the flags added to ``jaxbp train``.
MODELS = {"mlp": [], "cnn": ["--model", "cnn"]}
SIDE = 28
CLASSES = 10
MAX_SHIFT = 3
_CHUNK = 10_000  # images generated at a time

#: The printed table: (row key, header).
COLUMNS = [
    ("model", "model"),
    ("train_images", "train images"),
    ("test_images", "test images"),
    ("peak_rss_mib", "peak RSS MiB"),
    ("under_limit", f"<= {LIMIT_MIB} MiB"),
    ("train_seconds", "train s"),
    ("wall_seconds", "process s"),
    ("test_accuracy", "test acc"),
]


def class_patterns(rng: np.random.Generator) -> np.ndarray:
    """Ten smooth 28x28 patterns in [0, 1] (float32), one per class: a random
    7x7 field blown up 4x, smoothed, and kept where it is bright."""
    coarse = rng.normal(size=(CLASSES, SIDE // 4, SIDE // 4))
    fine = np.kron(coarse, np.ones((4, 4)))
    for axis in (1, 2):  # a 5-tap box blur along each image axis
        fine = sum(np.roll(fine, s, axis=axis) for s in range(-2, 3)) / 5
    fine = np.clip(fine - 0.3, 0, None)
    return (fine / fine.max(axis=(1, 2), keepdims=True)).astype(np.float32)


def synthetic_mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, 28, 28) uint8 and their labels (n,) uint8, balanced
    classes in random order: the class's pattern (the same for every seed)
    rolled by up to three pixels each way, times a contrast in [0.3, 1.0], plus
    Gaussian noise of 70 grey levels."""
    patterns = class_patterns(np.random.default_rng(1234))
    shifts = range(-MAX_SHIFT, MAX_SHIFT + 1)
    rolled = np.stack(  # (shifts, shifts, classes, 28, 28)
        [[np.roll(patterns, (dy, dx), axis=(1, 2)) for dx in shifts] for dy in shifts]
    )
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % CLASSES).astype(np.uint8)
    images = np.empty((n, SIDE, SIDE), np.uint8)
    for start in range(0, n, _CHUNK):
        y = labels[start : start + _CHUNK]
        dy, dx = rng.integers(0, len(shifts), (2, y.size))
        contrast = rng.uniform(0.3, 1.0, (y.size, 1, 1)).astype(np.float32)
        noise = rng.normal(0, 70, (y.size, SIDE, SIDE)).astype(np.float32)
        pixels = 255 * contrast * rolled[dy, dx, y] + noise
        images[start : start + y.size] = np.clip(pixels, 0, 255).astype(np.uint8)
    return images, labels


def _holds(path: Path, count: int) -> bool:
    """Whether ``path`` is an IDX file of ``count`` items (a bad file: no)."""
    try:
        return path.is_file() and read_idx(path).shape[0] == count
    except ValueError:
        return False


def write_mnist(directory: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """The four MNIST-format files of :func:`synthetic_mnist` in ``directory``
    (created); files there already holding the right counts are kept."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, n, split_seed in (("train", n_train, seed), ("test", n_test, seed + 1)):
        images_path = directory / MNIST_FILES[f"{split}_images"]
        labels_path = directory / MNIST_FILES[f"{split}_labels"]
        if _holds(images_path, n) and _holds(labels_path, n):
            continue
        images, labels = synthetic_mnist(n, split_seed)
        write_idx(images_path, images)
        write_idx(labels_path, labels)
    return directory


#: ``python -c`` of a child: ``jaxbp.cli.main(argv)``, then its VmHWM (KiB)
#: written to the file named first.
MEASURED_MAIN = """
import sys
from jaxbp import cli
try:
    status = cli.main(sys.argv[2:])
finally:
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM")).split()[1]
    with open(sys.argv[1], "w") as f:
        f.write(hwm)
sys.exit(status)
"""


def run_measured(argv: list[str], log_path: Path) -> dict:
    """Run the jaxbp command line with ``argv`` in a fresh process, its output
    to ``log_path``: its exit status, wall seconds and peak resident memory in
    MiB: the child's VmHWM, the high-water mark of its own address space
    (:data:`MEASURED_MAIN`). Not ``ru_maxrss``: Linux counts in it the pages
    of the process the child was forked from."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    hwm_path = log_path.with_suffix(".vmhwm")
    command = [sys.executable, "-c", MEASURED_MAIN, str(hwm_path), *argv]
    with open(log_path, "wb") as log:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        child.wait()
        seconds = time.perf_counter() - start
    return {
        "returncode": child.returncode,
        "wall_seconds": seconds,
        "peak_rss_mib": int(hwm_path.read_text()) / 1024,  # VmHWM is in KiB
    }


def train_run(name: str, data_dir: Path, work: Path) -> dict:
    """One ``jaxbp train`` epoch of model ``name`` on ``data_dir``: a row."""
    out = work / name
    argv = ["train", "--dataset", "mnist", "--data-dir", str(data_dir)]
    argv += ["--epochs", "1", "--quiet", "--out", str(out), *MODELS[name]]
    measured = run_measured(argv, work / f"{name}.log")
    if measured["returncode"] != 0:
        log = (work / f"{name}.log").read_text(errors="replace")
        raise RuntimeError(f"jaxbp {' '.join(argv)} failed:\n{log[-4000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "model": name,
        "command": " ".join(["jaxbp", *argv]),
        **measured,
        "under_limit": measured["peak_rss_mib"] <= LIMIT_MIB,
        "train_seconds": metrics["train_seconds"],
        "test_accuracy": metrics["test_accuracy"],
    }


def measure(data_dir: Path, n_train: int, n_test: int, work: Path) -> list[dict]:
    """Write the data (if needed) and run every model of :data:`MODELS`."""
    write_mnist(data_dir, n_train, n_test)
    sizes = {"train_images": n_train, "test_images": n_test}
    return [{**sizes, **train_run(name, data_dir, work)} for name in MODELS]


def image_count(text: str) -> int:
    """An argparse type: a number of images, at least ten per class."""
    value = int(text)
    if value < CLASSES * 10:
        raise argparse.ArgumentTypeError(f"must be at least {CLASSES * 10}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """report.parse_args (``--quick``, ``--out``) plus ``--data-dir``,
    ``--train-size`` and ``--test-size``."""
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--data-dir", type=Path, default=None)
    extra.add_argument("--train-size", type=image_count, default=None)
    extra.add_argument("--test-size", type=image_count, default=None)
    known, rest = extra.parse_known_args(argv)
    description = (
        __doc__.splitlines()[0] + " Also --data-dir DIR (keep the IDX files "
        "there), --train-size N, --test-size N (default 60000 and 10000, "
        "6000 and 1000 with --quick)."
    )
    args = report.parse_args("mnist_memory", description, rest)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    args.data_dir = known.data_dir
    args.train_size = known.train_size or sizes[0]
    args.test_size = known.test_size or sizes[1]
    return args


def main(argv=None) -> int:
    """Measure both models, print the table, write the JSON file."""
    args = parse_args(argv)
    machine = benchmark.machine_info()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jaxbp-mnist-memory-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        rows = measure(data_dir, args.train_size, args.test_size, Path(tmp))
    report.print_table(
        [header for _, header in COLUMNS],
        [[row[key] for key, _ in COLUMNS] for row in rows],
        f"jaxbp train --epochs 1 on MNIST-size data: peak RSS (limit {LIMIT_MIB} MiB)",
    )
    for row in rows:
        print(row["command"])
    report.write_result(
        args,
        started,
        limit_mib=LIMIT_MIB,
        machine={**machine, "loadavg_after": list(os.getloadavg())},
        rows=rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
