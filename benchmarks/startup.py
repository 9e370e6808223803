"""Where a fresh ``jaxbp train`` process spends its time, phase by phase.

``python benchmarks/startup.py [--quick] [--out DIR] [--reps N] [--epochs E]``
runs the 50-epoch ``jaxbp train`` of ``benchmarks/peers.py``'s process section
(the digits MLP without dropout) in fresh processes, without its compilation
cache and with a warm one (a throwaway run fills a temporary cache first),
``--reps`` rounds in an order drawn anew each round. Each process runs under
``benchmarks/startup_probe.py``, which records when each phase ends and the
spans JAX reports for making programs in the main thread. Medians (and
quartiles in ``DIR/startup.json``) of:

- imports: ``jax`` and ``jaxbp.cli``;
- flags, data and model: until training starts;
- making programs: tracing, keying (jaxbp's executable cache), lowering and
  compiling (or loading from a cache) during training, each span counted once;
- epochs and the test evaluation: the rest of training;
- outputs: ``metrics.json`` and ``curves.png``;
- interpreter start and exit: the wall time from spawn to exit not covered above;

and, per program (JAX's function name), its tracing, keying, lowering and
compile or load seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

from benchmarks import peers_process
from benchmarks.report import parse_args, positive_int, print_table, write_result
from benchmarks.timing import quartiles
from jaxbp.compilation import covered_seconds

PROBE = Path(__file__).resolve().parent / "startup_probe.py"
MODES = ("no cache", "warm cache")
#: What making a program is made of (``startup_probe.py``'s span kinds).
KINDS = ("trace", "key", "lower", "compile")
PHASES = (
    "imports",
    "flags, data and model",
    "making programs",
    "  of which tracing",
    "  of which keying",
    "  of which lowering",
    "  of which compiling or loading",
    "epochs and test evaluation",
    "outputs",
    "interpreter start and exit",
    "whole process",
)


def phases(wall: float, probe: dict) -> dict[str, float]:
    """One run's seconds per phase (:data:`PHASES`) from its wall time and
    what ``startup_probe.py`` wrote."""
    marks = probe["marks"]
    spans = [s for s in probe["spans"] if marks["prepared"] <= s[2] <= marks["trained"]]
    by_kind = {k: [(a, b) for kind, _, a, b in spans if kind == k] for k in KINDS}
    making = covered_seconds([(a, b) for *_, a, b in spans])
    return {
        "imports": marks["imported"],
        "flags, data and model": marks["prepared"] - marks["imported"],
        "making programs": making,
        "  of which tracing": covered_seconds(by_kind["trace"]),
        "  of which keying": covered_seconds(by_kind["key"]),
        "  of which lowering": covered_seconds(by_kind["lower"]),
        "  of which compiling or loading": covered_seconds(by_kind["compile"]),
        "epochs and test evaluation": marks["trained"] - marks["prepared"] - making,
        "outputs": marks["written"] - marks["trained"],
        "interpreter start and exit": wall - marks["written"],
        "whole process": wall,
    }


def programs(probe: dict) -> dict[str, dict[str, float]]:
    """Seconds of tracing, keying, lowering and compiling (or loading) per
    function name."""
    out: dict[str, dict[str, float]] = {}
    for kind, name, a, b in probe["spans"]:
        name = name.removeprefix("jit(").removesuffix(")")  # lowering's and XLA's
        row = out.setdefault(name, dict.fromkeys(KINDS, 0.0))
        row[kind] += b - a
    return out


def run_once(train_args: list[str], env: dict, work: Path) -> tuple[float, dict]:
    """(wall seconds from spawn to exit, the probe's record) of one process."""
    record = work / "probe.json"
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(PROBE), str(record), *train_args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"jaxbp train failed ({done.returncode}):\n{done.stderr}")
    return wall, json.loads(record.read_text())


def measure(epochs: int, reps: int, work: Path, log=print) -> dict[str, list]:
    """``{mode: [(wall, probe record), ...]}``: ``reps`` interleaved rounds."""
    out = work / "out"
    train_args = peers_process.jaxbp_train_argv(epochs, out)[3:]  # after -m jaxbp
    cold = peers_process.base_env()
    warm = {**cold, "JAXBP_COMPILATION_CACHE": "1"}
    warm["JAX_COMPILATION_CACHE_DIR"] = str(work / "xla-cache")
    envs = dict(zip(MODES, (cold, warm)))
    log("filling the compilation cache")
    run_once(train_args, warm, work)
    runs: dict[str, list] = {mode: [] for mode in MODES}
    rng = np.random.default_rng(0)
    for r in range(reps):
        for i in rng.permutation(len(MODES)):
            mode = MODES[i]
            runs[mode].append(run_once(train_args, envs[mode], work))
            log(f"round {r + 1}/{reps}, {mode}: {runs[mode][-1][0]:.2f} s")
    return runs


def summary(runs: dict[str, list]) -> dict:
    """Medians and quartiles of every phase and program, per mode."""
    result = {}
    for mode, done in runs.items():
        per_run = [phases(wall, probe) for wall, probe in done]
        result[mode] = {
            "phases": {p: quartiles([r[p] for r in per_run]) for p in PHASES},
            "programs": _program_medians([programs(probe) for _, probe in done]),
            "runs": per_run,
        }
    return result


def _program_medians(per_run: list[dict]) -> dict[str, dict[str, float]]:
    names = sorted({name for run in per_run for name in run})
    return {
        name: {
            kind: float(
                np.median([run.get(name, {}).get(kind, 0.0) for run in per_run])
            )
            for kind in KINDS
        }
        for name in names
    }


def print_summary(result: dict, epochs: int, reps: int) -> None:
    rows = [
        [phase, *(f"{result[m]['phases'][phase][1]:.3f}" for m in MODES)]
        for phase in PHASES
    ]
    title = f"fresh jaxbp train, {epochs} epochs: seconds per phase, medians of {reps}"
    print_table(["phase", *MODES], rows, title)
    for mode in MODES:
        rows = [
            [name, *(f"{row[k]:.3f}" for k in KINDS)]
            for name, row in result[mode]["programs"].items()
        ]
        print()
        print_table(
            ["program", "trace s", "key s", "lower s", "compile/load s"],
            rows,
            f"programs made in the main thread, {mode}: medians",
        )


def main(argv=None) -> int:
    def options(parser):
        parser.add_argument(
            "--reps",
            type=positive_int,
            default=None,
            help="rounds (default 5; 1 with --quick)",
        )
        parser.add_argument(
            "--epochs",
            type=positive_int,
            default=None,
            help="epochs (default 50; 3 with --quick)",
        )

    args = parse_args("startup", __doc__.splitlines()[0], argv, options=options)
    reps = args.reps or (1 if args.quick else 5)
    epochs = args.epochs or (3 if args.quick else 50)
    from benchmarks.benchmark import machine_info

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        result = summary(measure(epochs, reps, Path(work)))
    print_summary(result, epochs, reps)
    print()
    write_result(
        args,
        started,
        machine=machine_info(),
        settings={"epochs": epochs, "reps": reps},
        results=result,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
