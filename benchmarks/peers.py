"""jaxbp against plain JAX+optax, Flax NNX, Equinox, PyTorch and scikit-learn, one model.

Every contender trains the problem of :mod:`benchmarks.peers_problem`: the
digits split of ``jaxbp.data.load("digits")``, the MLP 64-256-256-10 with
ReLU and no dropout (so every library computes the same function), jaxbp's
initial weights copied into each library, softmax cross-entropy, Adam (lr
1e-3), batch 32, float32, and ``fit(seed=0)``'s batches fed to every peer.
How each library is used is in its module (``benchmarks/peers_LIBRARY.py``).
Three sections:

- ``epoch``: the steady-state time of one epoch (40 steps): jaxbp's train
  step scanned over the epoch (manual backprop and autodiff), ``jaxbp.train.fit``
  per epoch (a ``fit`` call of several epochs, divided; it also measures the
  training accuracy after every epoch), a plain JAX + optax ``lax.scan``, Flax
  NNX's ``nnx.jit`` step in a Python loop (and its epoch as a ``lax.scan`` of
  the split model), Equinox's ``eqx.filter_jit`` step
  in a loop, PyTorch's eager loop and scikit-learn's ``partial_fit``. First,
  every contender trains epoch 1 from the same weights on the same batches,
  and its mean loss is compared with jaxbp's (``Δ loss``: they compute the
  same thing). Then interleaved repetitions (:mod:`benchmarks.timing`) of the
  next epochs; ratios are paired, against jaxbp's manual scan.
- ``gradient``: one loss and gradient of the MLP 784-1024-1024-10 on a batch
  of 512 (jaxbp manual and autodiff, plain JAX, Flax, Equinox, PyTorch), its
  FLOP rate and its fraction of the matmul peak: a 2048² float32 XLA matmul
  timed in the same repetitions (a paired ratio). FLOPs are counted
  (:func:`benchmarks.problems.dense_sizes_flops`): ``2·B·n_in·n_out`` per
  dense layer forward, twice that backward (``dW`` and ``dx``) except the
  first layer's ``dx``; elementwise work is not counted.
- ``process``: the wall time of a fresh 50-epoch run, each contender a new
  ``python`` process (:mod:`benchmarks.peers_process`).

A peer that is not installed (``pip install -e ".[peers]"`` adds torch, flax
and equinox) is skipped with a note. Nothing here assumes a CPU: JAX runs on
its default device, PyTorch on CUDA when available, and every timed call
waits for its device.

    python benchmarks/peers.py [--quick] [--out DIR] [--only NAMES]
        [--epochs N] [--process-reps N]
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root

import numpy as np

from benchmarks import peers_problem, peers_process, report
from benchmarks.context import BenchContext
from benchmarks.problems import dense_sizes_flops, matmul_problem
from benchmarks.timing import interleaved_times, ratio_columns, time_columns

SECTIONS = ("epoch", "gradient", "process")
#: Each library and the module whose absence skips it.
LIBRARIES = {
    "jaxbp": "jaxbp",
    "jax": "optax",
    "flax": "flax",
    "equinox": "equinox",
    "torch": "torch",
    "sklearn": "sklearn",
}
INSTALL = 'pip install -e ".[peers]"'
#: Distributions whose versions the JSON records.
VERSIONS = ("jax", "jaxlib", "optax", "flax", "equinox", "torch", "scikit-learn")
#: Environment variables that change the timings, recorded in the JSON.
ENVIRONMENT = ("XLA_FLAGS", "OMP_NUM_THREADS", "PYTHONDONTWRITEBYTECODE")
#: The epoch section's contenders: (name, library, make_trainer's keywords).
EPOCH_CONTENDERS = (
    ("jaxbp manual scan", "jaxbp", {"backprop": "manual"}),
    ("jaxbp autodiff scan", "jaxbp", {"backprop": "autodiff"}),
    ("JAX+optax scan", "jax", {}),
    ("Flax NNX nnx.jit loop", "flax", {}),
    ("Flax NNX split/merge scan", "flax", {"scan": True}),
    ("Equinox filter_jit loop", "equinox", {}),
    ("PyTorch eager loop", "torch", {}),
    ("scikit-learn partial_fit", "sklearn", {}),
)
EPOCH_BASELINE = "jaxbp manual scan"
FIT = "jaxbp fit, per epoch"
#: The gradient section's contenders: (name, library).
GRADIENT_CONTENDERS = (
    ("jaxbp manual", "jaxbp"),
    ("jaxbp autodiff", "jaxbp"),
    ("JAX value_and_grad", "jax"),
    ("Flax NNX", "flax"),
    ("Equinox", "equinox"),
    ("PyTorch", "torch"),
)
GRADIENT_BASELINE = "jaxbp manual"


def peer_module(library: str):
    """``benchmarks.peers_LIBRARY`` (imports the library)."""
    return importlib.import_module(f"benchmarks.peers_{library}")


def available(libraries) -> tuple[list[str], list[str]]:
    """(the installed ones of ``libraries``, a note for each one skipped)."""
    present, notes = [], []
    for lib in libraries:
        if importlib.util.find_spec(LIBRARIES[lib]) is None:
            notes.append(
                f"skipped {lib}: {LIBRARIES[lib]} is not installed ({INSTALL})"
            )
        else:
            present.append(lib)
    return present, notes


def loss_columns(losses: np.ndarray, baseline: np.ndarray) -> dict:
    """The mean of the first epoch's losses and its difference from the
    baseline's; the largest per-step difference where both report each step."""
    out = {
        "epoch1_loss": float(np.mean(losses)),
        "loss_diff": float(abs(np.mean(losses) - np.mean(baseline))),
        "step_loss_diff": None,
    }
    if losses.shape == baseline.shape:
        out["step_loss_diff"] = float(np.max(np.abs(losses - baseline)))
    return out


def epoch_rows(ctx: BenchContext, problem, libraries, fit_epochs: int) -> list[dict]:
    """Epoch 1 from the same weights (the check), then interleaved epochs."""
    indices = problem.indices[0]
    trainers, first = {}, {}
    for name, lib, kwargs in EPOCH_CONTENDERS:
        if lib in libraries:
            trainers[name] = peer_module(lib).make_trainer(problem, **kwargs)
            first[name] = np.asarray(trainers[name].epoch(indices), np.float64)
            ctx.say(f"epoch {name}: epoch-1 loss {np.mean(first[name]):.6f}")
    calls = {k: functools.partial(t.epoch, indices) for k, t in trainers.items()}
    calls[FIT] = peer_module("jaxbp").fit_call(problem, fit_epochs)
    first[FIT] = np.asarray([calls[FIT]()[0]["train_loss"]])
    times = interleaved_times(calls, reps=ctx.reps, min_seconds=ctx.min_seconds)
    times[FIT] = times[FIT] / fit_epochs
    libs = {name: lib for name, lib, _ in EPOCH_CONTENDERS} | {FIT: "jaxbp"}
    rows = []
    for name in calls:
        row = {"section": "epoch", "name": name, "library": libs[name]}
        row["steps"] = int(indices.shape[0])
        row.update(time_columns("ms", times[name]))
        row.update(ratio_columns("/jaxbp", times[name], times[EPOCH_BASELINE]))
        row.update(loss_columns(first[name], first[EPOCH_BASELINE]))
        rows.append(row)
    rows[-1]["fit_epochs"] = fit_epochs
    return rows


def gradient_rows(ctx: BenchContext, libraries) -> list[dict]:
    """One loss and gradient of the large MLP per contender, with the matmul
    peak timed in the same repetitions."""
    if ctx.quick:
        sizes, batch = (
            peers_problem.GRADIENT_SIZES_QUICK,
            peers_problem.GRADIENT_BATCH_QUICK,
        )
    else:
        sizes, batch = peers_problem.GRADIENT_SIZES, peers_problem.GRADIENT_BATCH
    weights, x, y = peers_problem.gradient_data(sizes, batch)
    jaxbp_calls = peer_module("jaxbp").gradient_calls(weights, x, y)
    calls = {f"jaxbp {k}": call for k, call in jaxbp_calls.items()}
    for name, lib in GRADIENT_CONTENDERS:
        if lib != "jaxbp" and lib in libraries:
            calls[name] = peer_module(lib).gradient_call(weights, x, y)
    losses = {k: float(np.asarray(call()[0])) for k, call in calls.items()}
    matmul, a, b, matmul_flops = matmul_problem(ctx.peak_n)
    calls["matmul"] = functools.partial(matmul, a, b)
    times = interleaved_times(calls, reps=ctx.reps, min_seconds=ctx.min_seconds)
    flops = dense_sizes_flops(sizes, batch)[1]
    libs = dict(GRADIENT_CONTENDERS)
    rows = []
    for name, loss in losses.items():
        row = {"section": "gradient", "name": name, "library": libs[name]}
        row.update({"sizes": list(sizes), "batch": batch, "gflop": flops / 1e9})
        row.update(time_columns("ms", times[name]))
        row["gflops"] = flops / float(np.median(times[name])) / 1e9
        # (flops / t) / (matmul_flops / t_matmul), paired per repetition
        scaled = times["matmul"] * (flops / matmul_flops)
        row.update(ratio_columns("of_peak", scaled, times[name]))
        row["peak_gflops"] = matmul_flops / float(np.median(times["matmul"])) / 1e9
        row["peak_n"] = ctx.peak_n
        row.update(ratio_columns("/jaxbp", times[name], times[GRADIENT_BASELINE]))
        row["loss_diff"] = abs(loss - losses[GRADIENT_BASELINE])
        rows.append(row)
    return rows


def versions() -> dict[str, str | None]:
    """The installed version of each library compared (None: not installed)."""
    out = {}
    for name in VERSIONS:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def torch_settings(libraries) -> dict | None:
    """PyTorch's device and thread count, as its contenders ran (None: absent)."""
    if "torch" not in libraries:
        return None
    module = peer_module("torch")
    where = module.device()
    return {"device": str(where), "threads": module.torch.get_num_threads()}


def parse_names(text: str) -> list[str]:
    """``--only``'s comma-separated sections and libraries, checked."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = (*SECTIONS, *LIBRARIES)
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown name {bad[0] if bad else text!r}; choose from {', '.join(known)}"
        )
    return names


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        type=parse_names,
        default=None,
        metavar="NAMES",
        help="comma-separated sections (epoch, gradient, process) and/or libraries "
        "(jaxbp, jax, flax, equinox, torch, sklearn; jaxbp, the baseline, always "
        "runs); default: everything installed",
    )
    parser.add_argument(
        "--epochs",
        type=report.positive_int,
        default=None,
        help="epochs of the fresh-process runs (default 50; 3 with --quick)",
    )
    parser.add_argument(
        "--process-reps",
        type=report.positive_int,
        default=None,
        help="interleaved rounds of fresh processes (default 5; 1 with --quick)",
    )


def selection(only) -> tuple[list[str], list[str]]:
    """(sections, libraries) named by ``--only`` (each default: all)."""
    only = only or []
    sections = [s for s in SECTIONS if s in only] or list(SECTIONS)
    libraries = [lib for lib in LIBRARIES if lib in only] or list(LIBRARIES)
    return sections, sorted({"jaxbp", *libraries}, key=list(LIBRARIES).index)


#: Printed columns per section: (key, header, format).
COLUMNS = {
    "epoch": [
        ("name", "epoch (40 steps)", "{}"),
        ("ms", "ms", "{:.2f}"),
        ("/jaxbp", "/ jaxbp scan", "{:.2f}"),
        ("epoch1_loss", "epoch-1 loss", "{:.6f}"),
        ("loss_diff", "Δ loss", "{:.1e}"),
    ],
    "gradient": [
        ("name", "one gradient", "{}"),
        ("ms", "ms", "{:.2f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("of_peak", "of peak", "{:.0%}"),
        ("/jaxbp", "/ jaxbp manual", "{:.2f}"),
        ("loss_diff", "Δ loss", "{:.1e}"),
    ],
    "process": [
        ("name", "fresh process", "{}"),
        ("seconds", "s", "{:.2f}"),
        ("/jax_script", "/ JAX script", "{:.2f}"),
        ("test_accuracy", "test accuracy", "{:.4f}"),
    ],
}


def print_section(section: str, rows: list[dict], title: str) -> None:
    columns = COLUMNS[section]

    def cell(row, key, fmt):
        value = row.get(key)
        return "-" if value is None else fmt.format(value)

    report.print_table(
        [header for _, header, _ in columns],
        [[cell(r, k, f) for k, _, f in columns] for r in rows],
        title=title,
    )
    print()


def titles(ctx: BenchContext, args) -> dict[str, str]:
    return {
        "epoch": f"steady-state epoch, digits {'-'.join(map(str, peers_problem.SIZES))}"
        f" Adam batch {peers_problem.BATCH}: medians of {ctx.reps} interleaved reps",
        "gradient": f"one loss + gradient, fraction of a {ctx.peak_n}² f32 matmul's "
        f"rate timed alongside: medians of {ctx.reps} interleaved reps",
        "process": f"fresh process, {args.epochs} epochs, from spawn to exit: "
        f"medians of {args.process_reps} interleaved rounds",
    }


def run(args, ctx: BenchContext | None = None) -> dict:
    """Run the selected sections (``ctx``: the timing settings, by default
    those of ``args.quick``); the JSON payload."""
    from benchmarks.benchmark import machine_info

    if ctx is None:
        ctx = BenchContext.make(quick=args.quick, log=print)
    load_before = machine_info().get("loadavg")
    sections, wanted = selection(args.only)
    libraries, notes = available(wanted)
    for note in notes:
        print(note)
    rows = []
    if "epoch" in sections:
        problem = peers_problem.make_problem(1)
        rows += epoch_rows(ctx, problem, libraries, fit_epochs=2 if args.quick else 10)
    if "gradient" in sections:
        rows += gradient_rows(ctx, libraries)
    if "process" in sections:
        with tempfile.TemporaryDirectory(prefix="jaxbp-peers-") as work:
            rows += peers_process.process_rows(
                libraries, args.epochs, args.process_reps, Path(work)
            )
    return {
        "benchmark": args.name,
        "quick": args.quick,
        "machine": {**machine_info(), "loadavg_before": load_before},
        "versions": versions(),
        "environment": {k: os.environ.get(k) for k in ENVIRONMENT},
        "torch": torch_settings(libraries),
        "settings": {
            "reps": ctx.reps,
            "min_seconds": ctx.min_seconds,
            "process_epochs": args.epochs,
            "process_reps": args.process_reps,
            "sections": sections,
            "libraries": libraries,
        },
        "skipped": notes,
        "rows": rows,
        "titles": {s: t for s, t in titles(ctx, args).items() if s in sections},
    }


def parse(argv=None) -> argparse.Namespace:
    """The flags (``report.parse_args``'s and :func:`options`), defaults filled."""
    args = report.parse_args("peers", __doc__.splitlines()[0], argv, options=options)
    if args.epochs is None:
        args.epochs = 3 if args.quick else 50
    if args.process_reps is None:
        args.process_reps = 1 if args.quick else 5
    return args


def finish(args, payload: dict) -> None:
    """Print one table per section and the skip notes; write the JSON."""
    print()
    for section, title in payload["titles"].items():
        rows = [r for r in payload["rows"] if r["section"] == section]
        print_section(section, rows, title)
    for note in payload["skipped"]:
        print(note)
    print(f"wrote {report.write_json(args.path, payload)}")


def main(argv=None) -> int:
    """Run, print one table per section, write ``DIR/peers.json``."""
    args = parse(argv)
    started = time.perf_counter()
    payload = run(args)
    payload["seconds"] = time.perf_counter() - started
    finish(args, payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
