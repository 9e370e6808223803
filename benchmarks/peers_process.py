"""Whole-process time of a fresh training run: each contender a new ``python`` process.

Timed from spawn to exit: interpreter start-up, imports, data loading,
compilation, ``epochs`` epochs of training and the test accuracy. The
contenders (each trains the problem of :mod:`benchmarks.peers_problem`: the
same weights and batches; see ``benchmarks/peers_script.py``):

- ``jaxbp train``: the CLI (``--dropout 0 --input-dropout 0`` so it trains
  the same MLP; it also evaluates the validation split every epoch and writes
  its metrics and plot, as it always does), without its compilation cache
  (``JAXBP_COMPILATION_CACHE=0``) and with a warm one (a throwaway run first
  fills a temporary ``JAX_COMPILATION_CACHE_DIR``; the user's cache is never
  touched);
- ``fit``: a script calling ``jaxbp.train.fit`` and ``evaluate``;
- a plain JAX + optax, a Flax NNX, an Equinox, a PyTorch and a scikit-learn
  script (reading the problem's ``.npz`` with NumPy).

No process but the warm-cache one has a persistent compilation cache. The
contenders run in an order drawn anew for each repetition; we report medians
and the paired ratio to the plain JAX script's time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import peers_problem
from benchmarks.timing import ratio_columns, time_columns

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve().parent / "peers_script.py"
#: The contender the ratios are taken against.
BASELINE = "JAX+optax script"


@dataclasses.dataclass
class Contender:
    """A command to time, its environment, and where its test accuracy is."""

    name: str
    library: str
    argv: list[str]
    env: dict[str, str]
    metrics: Path | None = None  # jaxbp train's metrics.json; else stdout's JSON
    trains: bool = True  # False: an import only, no test accuracy

    def run(self) -> tuple[float, float]:
        """(wall seconds from spawn to exit, test accuracy) of one fresh run."""
        start = time.perf_counter()
        done = subprocess.run(
            self.argv, env=self.env, capture_output=True, text=True, check=False
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(
                f"{self.name}: `{' '.join(self.argv)}` exited with "
                f"{done.returncode}:\n{done.stderr[-4000:]}"
            )
        if not self.trains:
            return seconds, float("nan")
        if self.metrics is not None:
            accuracy = json.loads(self.metrics.read_text())["test_accuracy"]
        else:
            accuracy = json.loads(done.stdout.strip().splitlines()[-1])["test_accuracy"]
        return seconds, float(accuracy)


def base_env() -> dict[str, str]:
    """The children's environment: this tree first on ``PYTHONPATH``, no
    persistent compilation cache, and Python's bytecode cache on as a user's
    Python has it (``PYTHONDONTWRITEBYTECODE`` would make every process
    compile jaxbp's sources anew, while the peers' installed packages have
    their bytecode from ``pip``)."""
    dropped = ("JAX_COMPILATION_CACHE_DIR", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    paths = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["JAXBP_COMPILATION_CACHE"] = "0"
    return env


def import_contenders(env) -> list[Contender]:
    """``import jax`` and ``import jaxbp`` alone, each in a fresh process:
    jaxbp's own import cost is the difference."""
    return [
        Contender(
            f"import {module}",
            "jaxbp",
            [sys.executable, "-c", f"import {module}"],
            env,
            trains=False,
        )
        for module in ("jax", "jaxbp")
    ]


def jaxbp_train_argv(epochs: int | None, out: Path) -> list[str]:
    """``jaxbp train`` on the problem's model, batches and optimizer; with
    ``epochs`` None, ``jaxbp train``'s defaults (its preset: 200 epochs,
    dropout) with only ``--out``."""
    if epochs is None:
        return [sys.executable, "-m", "jaxbp", "train", "--quiet", "--out", str(out)]
    hidden = ",".join(map(str, peers_problem.SIZES[1:-1]))
    return [
        *(sys.executable, "-m", "jaxbp", "train", "--quiet"),
        *("--dataset", "digits", "--hidden", hidden, "--activation", "relu"),
        *("--dropout", "0", "--input-dropout", "0", "--optimizer", "adam"),
        *("--lr", str(peers_problem.LEARNING_RATE)),
        *("--batch-size", str(peers_problem.BATCH), "--epochs", str(epochs)),
        *("--seed", str(peers_problem.SEED), "--out", str(out)),
    ]


def contenders(
    libraries, problem_path: Path, epochs: int, work: Path
) -> list[Contender]:
    """The commands of the given ``libraries`` ("jaxbp" gives jaxbp train twice
    and the fit script)."""
    env = base_env()
    warm = {**env, "JAXBP_COMPILATION_CACHE": "1"}
    warm["JAX_COMPILATION_CACHE_DIR"] = str(work / "xla-cache")
    script = [sys.executable, str(SCRIPT)]
    tail = [str(problem_path), str(epochs)]
    out = []
    if "jaxbp" in libraries:
        cold_out, warm_out = work / "train-cold", work / "train-warm"
        out += [
            Contender(
                "jaxbp train, no cache",
                "jaxbp",
                jaxbp_train_argv(epochs, cold_out),
                env,
                cold_out / "metrics.json",
            ),
            Contender(
                "jaxbp train, warm cache",
                "jaxbp",
                jaxbp_train_argv(epochs, warm_out),
                warm,
                warm_out / "metrics.json",
            ),
            Contender("jaxbp fit script", "jaxbp", [*script, "fit", *tail], env),
            Contender(
                "jaxbp train defaults (200 epochs), warm cache",
                "jaxbp",
                [*jaxbp_train_argv(None, work / "defaults")],
                warm,
                work / "defaults" / "metrics.json",
            ),
            *import_contenders(env),
        ]
    names = {
        "jax": BASELINE,
        "flax": "Flax NNX script",
        "equinox": "Equinox script",
        "torch": "PyTorch script",
        "sklearn": "scikit-learn script",
    }
    out += [
        Contender(name, lib, [*script, lib, *tail], env)
        for lib, name in names.items()
        if lib in libraries
    ]
    return out


def interleaved_runs(runners: list[Contender], reps: int, seed: int = 0) -> dict:
    """``reps`` rounds of every contender, in an order drawn for each round:
    ``{name: [(seconds, accuracy), ...]}``."""
    runs: dict[str, list] = {c.name: [] for c in runners}
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        for i in rng.permutation(len(runners)):
            runs[runners[i].name].append(runners[i].run())
    return runs


def shown_command(argv: list[str], work: Path) -> str:
    """``argv`` as the table shows it: ``python``, paths in the repository
    relative to it, the scratch directory as ``$WORK``."""
    shown = []
    for a in argv:
        if a == sys.executable:
            a = "python"
        elif a.startswith(str(work)):
            a = "$WORK" + a[len(str(work)) :]
        elif a.startswith(str(ROOT) + os.sep):
            a = a[len(str(ROOT)) + 1 :]
        shown.append(a)
    return " ".join(shown)


def summary_rows(
    runners: list[Contender], runs: dict, epochs: int, work: Path
) -> list[dict]:
    """One row per contender: median seconds (with quartiles), the paired
    ratio to the plain JAX script, every run, the median test accuracy."""
    rows = []
    for c in runners:
        seconds = np.asarray([s for s, _ in runs[c.name]])
        row = {
            "section": "process",
            "name": c.name,
            "library": c.library,
            "epochs": epochs,
            **time_columns("seconds", seconds, scale=1.0),
            "runs_seconds": seconds.tolist(),
            "test_accuracy": (
                float(np.median([a for _, a in runs[c.name]])) if c.trains else None
            ),
            "command": shown_command(c.argv, work),
        }
        if BASELINE in runs:
            baseline = np.asarray([s for s, _ in runs[BASELINE]])
            row.update(ratio_columns("/jax_script", seconds, baseline))
        rows.append(row)
    return rows


def process_rows(
    libraries, epochs: int, reps: int, work: Path, log=print
) -> list[dict]:
    """Time fresh ``epochs``-epoch runs of the ``libraries``' contenders,
    ``reps`` interleaved rounds, in the scratch directory ``work``."""
    problem_path = peers_problem.save(
        peers_problem.make_problem(epochs), work / "problem.npz"
    )
    runners = contenders(libraries, problem_path, epochs, work)
    for c in runners:
        if c.env.get("JAXBP_COMPILATION_CACHE") == "1":
            log(f"process: filling the compilation cache ({c.name})")
            c.run()
    runs = interleaved_runs(runners, reps)
    rows = summary_rows(runners, runs, epochs, work)
    for r in rows:
        accuracy = r["test_accuracy"]
        log(
            f"process {r['name']}: {r['seconds']:.2f} s"
            + ("" if accuracy is None else f", test accuracy {accuracy:.4f}")
        )
    return rows
