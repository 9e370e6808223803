"""The cheap-gradient principle: what one gradient costs, by method, as P grows.

``python experiments/backprop_cost.py [--quick] [--out DIR]``

For ReLU MLPs ``16-w-w-10`` (cross-entropy, a batch of 64 random examples)
with P from ~140 to ~110,000 parameters we time, in one process:

* ``forward``: the loss alone (``jaxbp.loss``), the unit of cost;
* ``manual``: reverse mode by jaxbp's hand-written backward pass
  (``jaxbp.loss_and_grad``);
* ``autodiff``: reverse mode by ``jax.value_and_grad`` (``backprop="autodiff"``);
* ``forward_mode``: the full gradient by forward mode: one JVP per parameter
  direction, P of them, as ``jax.vmap`` of ``jax.jvp`` over chunks of basis
  vectors (``lax.map`` over the chunks, so memory stays bounded);
* ``finite_diff``: central differences, 2P forward passes
  ``(L(θ + h e_i) − L(θ − h e_i)) / 2h`` batched the same way.

Every function is jitted; timings use ``benchmarks.timing.interleaved_times``
(warm-up calls first, ``block_until_ready``, the contenders interleaved in
rotating order); we report medians, and each ratio to ``forward`` as the
median of per-repetition ratios. Reverse mode is timed with the forward pass
in one interleaved group (21 repetitions of >= 50 ms each); forward mode and
finite differences with the forward pass in a second group (3 repetitions
once a call takes more than half a second). Forward mode and finite
differences are measured only up to the first size where one call takes
longer than ``slow_limit`` (1 s): nothing is extrapolated. The slope of
log(time / forward) against log(P) is fitted by least squares over the
measured sizes.

Reverse mode should cost a small constant times the forward pass at every
size (the FLOP count of the backward pass of a dense layer is twice its
forward: ratio <= 3), while forward mode and finite differences cost O(P)
forward passes. ``--quick``: widths 4 and 32 (P = 138 and 1,930), 5
repetitions.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for benchmarks/

import _common

import jaxbp
from benchmarks import problems, timing

IN, OUT, BATCH = 16, 10, 64
LOSS = "cross_entropy"
FD_STEP = 1e-2  # float32: central-difference error O(h²) vs rounding O(eps/h)
CHUNK_FLOATS = 2**22  # directions per chunk: K·P <= this many floats

FULL = {
    "widths": [4, 8, 16, 32, 64, 128, 256, 320],
    "reps": 21,
    "min_seconds": 0.05,
    "slow_limit": 1.0,
    "slow_reps_below": 0.5,
    "slow_reps": 3,
}
QUICK = {
    "widths": [4, 32],
    "reps": 5,
    "min_seconds": 0.005,
    "slow_limit": 0.5,
    "slow_reps_below": 0.5,
    "slow_reps": 3,
}
METHODS = ("forward", "manual", "autodiff", "forward_mode", "finite_diff")
SLOW = ("forward_mode", "finite_diff")
FAST = ("forward", "manual", "autodiff")


def chunked(fn_of_direction, theta, chunk):
    """[fn(e_i) for i < P] for basis vectors e_i, ``chunk`` at a time (vmap
    inside a chunk, lax.map over chunks); padding rows are zero directions."""
    p = theta.size
    n_chunks = -(-p // chunk)
    ids = jnp.arange(n_chunks * chunk, dtype=jnp.int32).reshape(n_chunks, chunk)

    def one_chunk(rows):
        basis = jax.nn.one_hot(rows, p, dtype=theta.dtype)  # (chunk, P)
        return jax.vmap(fn_of_direction)(basis)

    return jax.lax.map(one_chunk, ids).reshape(-1)[:p]


def gradient_methods(model, params, state, x, y):
    """Each method as a function of the parameters (a pytree)."""
    _, unravel = ravel_pytree(params)

    def loss_of_flat(theta):
        return jaxbp.loss(model, unravel(theta), x, y, loss=LOSS, state=state)

    def forward(p):
        return jaxbp.loss(model, p, x, y, loss=LOSS, state=state)

    def manual(p):
        return jaxbp.loss_and_grad(model, p, x, y, loss=LOSS, state=state)

    def autodiff(p):
        return jaxbp.loss_and_grad(
            model, p, x, y, loss=LOSS, state=state, backprop="autodiff"
        )

    def forward_mode(p):
        theta, _ = ravel_pytree(p)
        chunk = max(1, min(theta.size, CHUNK_FLOATS // theta.size))

        def jvp(v):
            return jax.jvp(loss_of_flat, (theta,), (v,))[1]

        return unravel(chunked(jvp, theta, chunk))

    def finite_diff(p):
        theta, _ = ravel_pytree(p)
        chunk = max(1, min(theta.size, CHUNK_FLOATS // theta.size))
        h = jnp.asarray(FD_STEP, theta.dtype)

        def central(v):
            return (loss_of_flat(theta + h * v) - loss_of_flat(theta - h * v)) / (2 * h)

        return unravel(chunked(central, theta, chunk))

    return {
        "forward": forward,
        "manual": manual,
        "autodiff": autodiff,
        "forward_mode": forward_mode,
        "finite_diff": finite_diff,
    }


def problem(sizes):
    """(model, params, state, x, y): ``benchmarks.problems.mlp_problem``'s ReLU
    MLP, random inputs and labels, float32; the (empty) state passed
    explicitly, so no call builds it again."""
    model, params, x, y = problems.mlp_problem(sizes, BATCH, dtype="float32")
    state = model.init_state()
    if jax.tree.leaves(state):
        raise ValueError("this experiment expects a model without state")
    return model, params, state, x, y


def first_calls(jitted: dict, params):
    """Each jitted method called twice: (outputs, seconds of the second call,
    seconds of the first call, compilation included)."""
    outputs, once, compile_s = {}, {}, {}
    for k, fn in jitted.items():
        with _common.Timer() as t:
            jax.block_until_ready(fn(params))  # compile + first run
        compile_s[k] = t.seconds
        with _common.Timer() as t:
            outputs[k] = jax.block_until_ready(fn(params))
        once[k] = t.seconds
    return outputs, once, compile_s


def errors_vs_manual(outputs) -> dict:
    """Each other gradient's relative error against the manual one."""
    reference = outputs["manual"][1]
    errors = {"autodiff": _common.relative_error(outputs["autodiff"][1], reference)}
    for k in SLOW:
        if k in outputs:
            errors[k] = _common.relative_error(outputs[k], reference)
    return errors


def timed_groups(calls: dict, once: dict, cfg: dict):
    """(fast times, slow times, slow reps): reverse mode against the forward
    pass in many interleaved repetitions; forward mode and finite differences
    against the forward pass in their own (fewer when one call takes seconds)."""
    fast = timing.interleaved_times(
        {k: calls[k] for k in FAST},
        reps=cfg["reps"],
        min_seconds=cfg["min_seconds"],
        warmup=1,
    )
    slow = [k for k in SLOW if k in calls]
    if not slow:
        return fast, {}, {}
    seconds = max(once[k] for k in slow)
    reps = cfg["reps"] if seconds < cfg["slow_reps_below"] else cfg["slow_reps"]
    slow_times = timing.interleaved_times(
        {k: calls[k] for k in ("forward", *slow)},
        reps=reps,
        min_seconds=cfg["min_seconds"],
        warmup=0,  # each was called twice already
    )
    return fast, slow_times, {k: reps for k in slow}


def time_and_ratio_columns(times, slow_times, n_params) -> dict:
    """Median times, ratios to the forward pass of the same group, and the
    cost of one finite-difference forward / one JVP in forward passes."""
    row = {}
    for k in FAST:
        row.update(timing.time_columns(f"{k}_ms", times[k]))
        if k != "forward":
            row.update(timing.ratio_columns(f"{k}_ratio", times[k], times["forward"]))
    for k in (k for k in SLOW if k in slow_times):
        row.update(timing.time_columns(f"{k}_ms", slow_times[k]))
        row.update(
            timing.ratio_columns(f"{k}_ratio", slow_times[k], slow_times["forward"])
        )
    if slow_times:
        row.update(timing.time_columns("forward_ms_slow_group", slow_times["forward"]))
    if "finite_diff" in slow_times:  # each of the 2P forwards, in forward passes
        row["finite_diff_cost_per_forward"] = row["finite_diff_ratio"] / (2 * n_params)
    if "forward_mode" in slow_times:  # each of the P JVPs, in forward passes
        row["forward_mode_cost_per_jvp"] = row["forward_mode_ratio"] / n_params
    return row


def measure(width: int, cfg: dict, active: set[str]) -> dict:
    """One row: every active method at MLP 16-width-width-10."""
    sizes = [IN, width, width, OUT]
    model, params, state, x, y = problem(sizes)
    n_params = int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))
    methods = gradient_methods(model, params, state, x, y)
    jitted = {k: jax.jit(methods[k]) for k in METHODS if k in active}
    outputs, once, compile_s = first_calls(jitted, params)
    calls = {k: (lambda fn=fn: fn(params)) for k, fn in jitted.items()}
    times, slow_times, slow_reps = timed_groups(calls, once, cfg)
    flops_fwd, flops_grad = problems.dense_sizes_flops(sizes, BATCH)
    return {
        "width": width,
        "sizes": sizes,
        "n_params": n_params,
        "flops_forward": flops_fwd,
        "flops_gradient": flops_grad,
        "flops_ratio": flops_grad / flops_fwd,
        "first_call_s": once,
        "compile_and_first_call_s": compile_s,
        "rel_error_vs_manual": errors_vs_manual(outputs),
        **time_and_ratio_columns(times, slow_times, n_params),
        "reps": {**{k: cfg["reps"] for k in FAST}, **slow_reps},
    }


def loglog_slope(p, values) -> float | None:
    """Least-squares slope of log(values) against log(p)."""
    if len(p) < 2:
        return None
    return float(np.polyfit(np.log(p), np.log(values), 1)[0])


def plot_references(ax, rows):
    """A line ∝ P through finite differences' first ratio, and the bound 5."""
    fd = [
        (r["n_params"], r["finite_diff_ratio"])
        for r in rows
        if "finite_diff_ratio" in r
    ]
    if fd:
        p = np.asarray([q for q, _ in fd], float)
        ax.plot(p, fd[0][1] * p / p[0], color="0.6", ls=":", lw=1.2)
        ax.plot(
            [], [], color="0.6", ls=":", lw=1.2, label="∝ P (slope 1), for reference"
        )
    ax.axhline(5, color="0.4", ls="--", lw=1)
    ax.plot([], [], color="0.4", ls="--", lw=1, label="5 (cheap-gradient bound)")


def plot(args, rows, slopes):
    plt = _common.pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10.5, 4.8))
    styles = {
        "forward": ("k", "o", "forward pass (loss only)"),
        "manual": ("tab:blue", "s", "reverse mode, manual backward"),
        "autodiff": ("tab:cyan", "^", "reverse mode, jax.grad"),
        "forward_mode": ("tab:orange", "D", "forward mode (P JVPs)"),
        "finite_diff": ("tab:red", "v", "finite differences (2P forwards)"),
    }
    for k, (color, marker, label) in styles.items():
        pts = [(r["n_params"], r[f"{k}_ms"]) for r in rows if f"{k}_ms" in r]
        if pts:
            p, ms = zip(*pts)
            ax1.plot(p, ms, color=color, marker=marker, label=label)
        if k == "forward":
            continue
        pts = [(r["n_params"], r[f"{k}_ratio"]) for r in rows if f"{k}_ratio" in r]
        if pts:
            p, ratio = zip(*pts)
            ax2.plot(p, ratio, color=color, marker=marker)
            slope = slopes.get(k)
            if slope is not None and k in SLOW:
                ax2.annotate(
                    f"slope {slope:.2f}",
                    (p[-1], ratio[-1]),
                    xytext=(6, -4 if k == "forward_mode" else 4),
                    textcoords="offset points",
                    fontsize=7,
                    color=color,
                )
    plot_references(ax2, rows)
    sizes = [r["n_params"] for r in rows]
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlim(min(sizes) / 1.6, max(sizes) * 6)  # room for the slope labels
        ax.set_yscale("log")
        ax.set_xlabel("number of parameters P")
        ax.grid(alpha=0.3, which="both")
    ax1.set_ylabel("time per call (ms, median)")
    ax1.set_title(f"One gradient, MLP 16-w-w-10, batch {BATCH}")
    ax2.set_ylabel("time / time of one forward pass")
    ax2.set_title("Cost relative to the forward pass")
    handles = ax1.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax1.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    _common.save_figure(fig, _common.figure_path(args))
    plt.close(fig)


def run_sizes(cfg) -> list[dict]:
    """A row per width; forward mode and finite differences dropped for the
    larger widths once one call takes longer than ``slow_limit``."""
    active, rows = set(METHODS), []
    for width in cfg["widths"]:
        row = measure(width, cfg, active)
        rows.append(row)
        for k in SLOW:
            if k in active and row["first_call_s"][k] > cfg["slow_limit"]:
                active.discard(k)
    return rows


def slopes_of(rows) -> dict:
    """Log-log slopes against P: of the ratio, of the time, and of the ratio
    over the sizes with P >= 1000."""
    out = {"ratio": {}, "time": {}, "ratio_large": {}}
    for k in METHODS[1:]:
        measured = [r for r in rows if f"{k}_ratio" in r]
        p = [r["n_params"] for r in measured]
        out["ratio"][k] = loglog_slope(p, [r[f"{k}_ratio"] for r in measured])
        out["time"][k] = loglog_slope(p, [r[f"{k}_ms"] for r in measured])
        large = [r for r in measured if r["n_params"] >= 1000]
        out["ratio_large"][k] = loglog_slope(
            [r["n_params"] for r in large], [r[f"{k}_ratio"] for r in large]
        )
    return out


def headline(rows, slopes) -> dict:
    manual_ratios = [r["manual_ratio"] for r in rows]
    fd_rows = [r for r in rows if "finite_diff_ratio" in r]
    return {
        "claim": "manual reverse-mode gradient / forward < ~5 at every size; "
        "finite-difference / forward grows ~linearly in P",
        "manual_ratio_max": max(manual_ratios),
        "manual_ratio_min": min(manual_ratios),
        "manual_ratio_by_P": {r["n_params"]: r["manual_ratio"] for r in rows},
        "finite_diff_ratio_by_P": {
            r["n_params"]: r["finite_diff_ratio"] for r in fd_rows
        },
        "finite_diff_loglog_slope": slopes["finite_diff"],
        "forward_mode_loglog_slope": slopes["forward_mode"],
        "largest_P_finite_diff": max(r["n_params"] for r in fd_rows),
        "finite_diff_ratio_increases_with_P": all(
            a["finite_diff_ratio"] < b["finite_diff_ratio"]
            for a, b in itertools.pairwise(fd_rows)
        ),
        "holds": bool(max(manual_ratios) < 5),
    }


PUBLISHED = {
    "griewank_walther_2008": "A. Griewank & A. Walther, Evaluating "
    "Derivatives (2nd ed., SIAM 2008), the cheap gradient principle: "
    "a reverse-mode gradient costs at most a small constant times one "
    "function evaluation (about 4-5 counting memory traffic), "
    "independent of the number of inputs.",
    "baydin_2018": "A. G. Baydin et al., 'Automatic differentiation in "
    "machine learning: a survey', JMLR 18(153), 2018: a gradient of "
    "f: R^n -> R costs n·c·ops(f) by forward mode and c·ops(f) by "
    "reverse mode, c a small constant (c < 6, typically 2-3).",
    "flops_ratio_dense_backward": "counted here: backward of a dense "
    "layer = 2x its forward FLOPs, so gradient/forward <= 3",
}
SLOPE_NOTE = (
    "a forward pass of these small MLPs is dominated by fixed "
    "per-call overhead (its time barely grows with P over the measured range), "
    "while each of the 2P batched forwards of finite differences costs compute "
    "proportional to P; so FD/forward grows faster than P here (slope between "
    "1 and 2); see finite_diff_cost_per_forward in the rows"
)


def print_rows(rows, slopes, seconds):
    _common.print_table(
        ["P", "forward ms", "manual/fwd", "autodiff/fwd", "fwd-mode/fwd", "FD/fwd"],
        [
            [
                r["n_params"],
                r["forward_ms"],
                r["manual_ratio"],
                r["autodiff_ratio"],
                r.get("forward_mode_ratio", "-"),
                r.get("finite_diff_ratio", "-"),
            ]
            for r in rows
        ],
        title="Time of one gradient relative to one forward pass (medians)",
    )
    print(
        f"log-log slope of ratio vs P: finite_diff {slopes['finite_diff']:.2f}, "
        f"forward_mode {slopes['forward_mode']:.2f}, manual {slopes['manual']:.2f}"
        f"; total {seconds:.1f} s"
    )


def main(argv=None) -> dict:
    args = _common.parse_args(
        "backprop_cost",
        "Gradient cost vs parameter count: reverse mode, forward mode, finite differences.",
        argv,
    )
    cfg = QUICK if args.quick else FULL
    with _common.Timer() as total:
        rows = run_sizes(cfg)
    slopes = slopes_of(rows)
    plot(args, rows, slopes["ratio"])
    results = {
        "setup": {
            "model": "ReLU MLP 16-w-w-10, cross-entropy, float32",
            "batch": BATCH,
            "fd_step": FD_STEP,
            "chunk_floats": CHUNK_FLOATS,
            "slow_limit_s": cfg["slow_limit"],
            "reps": cfg["reps"],
            "min_seconds": cfg["min_seconds"],
            "device": str(jax.devices()[0]),
            "machine": "2 CPU cores shared with other jobs: times are on a "
            "loaded machine; the ratios (paired, interleaved) are what to read",
        },
        "rows": rows,
        "loglog_slope_ratio_vs_P": slopes["ratio"],
        "loglog_slope_time_vs_P": slopes["time"],
        "loglog_slope_ratio_vs_P_for_P_ge_1000": slopes["ratio_large"],
        "slope_note": SLOPE_NOTE,
        "headline": headline(rows, slopes["ratio"]),
        "published": PUBLISHED,
        "seconds": total.seconds,
    }
    _common.write_json(args, results)
    print_rows(rows, slopes["ratio"], total.seconds)
    return results


if __name__ == "__main__":
    main()
