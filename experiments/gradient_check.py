"""Gradient check: the hand-written backward pass against jax.grad and finite differences.

``python experiments/gradient_check.py [--quick] [--out DIR]``

Every layer (dense; each of the 10 activations; batch norm in training and in
evaluation mode; layer norm; dropout and random translation with a fixed
key; a residual block; conv2d SAME/VALID with stride 1 and 2; max and average
pooling, plain and with overlapping SAME windows; flatten; the RNN, LSTM
and GRU, last state and all states, on float sequences; embedding, and the
LSTM and GRU in token models (embedding → recurrent → dense over the
vocabulary, cross-entropy at every position); softmax; serial; checkpointed, plain and with dropout
inside, whose recomputation must replay the same key; causal self-attention,
plain and with dropout on its weights; the position embedding; GPTs on
tokens, two blocks, and one block with dropout everywhere, their output head
tied to the token embedding) and every loss (mse,
cross_entropy, binary_cross_entropy, hinge with one output and multiclass)
gets a small model in which its backward pass is on the path of some
parameter's gradient. The textbook forms of the backward passes that
have a fast one are checked the same way, as layers whose ``backward`` is
``conv2d_backward_textbook`` (the sum over output positions of patch ⊗ dy),
``checkpointed_backward_textbook`` (forward again, then backward) or
``attention_backward_textbook`` (head by head, each softmax row's Jacobian
as a matrix; group "textbook form"; the cases are listed in
``_gradient_check_cases.py``).
For each case and each dtype the
script compares

- the manual gradient (``backprop="manual"``) with ``jax.grad`` of the same
  forward pass, in float32 and in float64;
- the manual float64 gradient with fourth-order centred finite differences
  (``jaxbp.gradcheck.finite_difference_grads``, h = 1e-6).

The relative error of a case is taken over its whole gradient,
``max |a − b| / max(|a|, |b|)``, maxima over every entry of every parameter
(``_common.relative_error``, ``check_grads``' measure):
a leaf whose true gradient is zero (the bias of a dense layer feeding batch
norm, which removes any constant) has a per-leaf relative error of rounding
over rounding, ~1, that says nothing; the worst per-leaf error is recorded
too. All cases are computed in one compiled program per dtype. The full run
also passes every case through ``jaxbp.check_grads`` (float32, and float64
with ``finite_differences=True``) and records its verdict; the quick run does
so for a few cases.

Tolerances (DESIGN.md): float64 vs autodiff <= 1e-10, float32 <= 1e-5,
float64 vs finite differences <= 1e-6.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

if "jax" not in sys.modules:  # run as a script: for check_grads' compilations too
    os.environ["XLA_FLAGS"] = _common.fast_compile_xla_flags(
        os.environ.get("XLA_FLAGS", "")
    )

import _gradient_check_cases
import jax
import jax.numpy as jnp
import numpy as np
from _common import (
    Timer,
    figure_path,
    parse_args,
    print_table,
    pyplot,
    relative_error,
    write_json,
)

import jaxbp
from jaxbp.gradcheck import finite_difference_grads

NAME = "gradient_check"
TOLERANCES = {"autodiff_float64": 1e-10, "autodiff_float32": 1e-5, "fd_float64": 1e-6}
BATCH = _gradient_check_cases.BATCH
# --quick: one case per family (every case costs a compilation); check_grads
# (three more compilations a case) on the first only
QUICK_CASES = (
    "dense",
    "tanh",
    "batchnorm (train)",
    "conv2d SAME s2",
    "max_pool 3x3/2 SAME",
    "rnn (last state)",
    "lstm (all states)",
    "gru (last state)",
    "embedding → lstm → dense (tokens)",
    "hinge (multiclass)",
    "checkpointed (dropout, fixed key)",
    "conv2d SAME s2 (textbook)",
    "checkpointed (textbook)",
    "causal_self_attention",
    "causal_self_attention (textbook)",
    "gpt (2 blocks, tokens)",
)
QUICK_CHECK_GRADS = ("dense",)


def _build(cases):
    """Per case: the float32 and float64 models, and one problem (parameters,
    state, inputs, targets) drawn in float64; float32 checks the same point."""
    built = []
    for i, (name, group, layers, in_shape, loss, mode) in enumerate(cases):
        rng = np.random.default_rng(i)
        models = {
            d: jaxbp.sequential(*layers, in_shape=in_shape, dtype=getattr(jnp, d))
            for d in ("float32", "float64")
        }
        spec_params, spec_state = jax.eval_shape(
            models["float64"].init_with_state, jax.random.key(0)
        )
        out_shape = models["float64"].out_shape
        y = (
            _gradient_check_cases.softmax_targets(rng, out_shape)
            if name == "softmax"
            else _gradient_check_cases.targets(rng, loss, out_shape)
        )
        # parameters, then inputs: the order the earlier cases were drawn in
        params = _gradient_check_cases.fill(spec_params, rng, np.float64)
        state = _gradient_check_cases.fill(spec_state, rng, np.float64)
        x, x2 = _gradient_check_cases.draw_inputs(rng, (BATCH, *in_shape), mode)
        problem = {"params": params, "state": state, "x": x, "x2": x2}
        built.append(
            {
                "name": name,
                "group": group,
                "loss": loss,
                "mode": mode,
                "models": models,
                "y": y,
                "problem": problem,
                "key": jax.random.key(i) if mode.get("key") else None,
            }
        )
    return built


def _inputs(case, dtype):
    """(params, state, x, x2) of the case in ``dtype`` (integer tokens stay
    integers)."""
    p = case["problem"]

    def cast(a):
        a = np.asarray(a)
        return a if np.issubdtype(a.dtype, np.integer) else a.astype(dtype)

    return jax.tree.map(cast, (p["params"], p["state"], p["x"], p["x2"]))


def _options(case, model, params, state, x2):
    """loss/state/key/train for the case (batch norm in evaluation mode: running
    statistics of another batch, from a training-mode forward pass with momentum 0)."""
    mode = case["mode"]
    if mode.get("bn_state"):
        _, _, state = model.forward(params, state, x2, train=True)
    return {
        "loss": case["loss"],
        "state": state,
        "key": case["key"],
        "train": mode.get("train", True),
    }


def _case_gradients(case):
    """Manual and autodiff gradients in float32 and float64 and finite
    differences in float64, for one case, as one compiled program."""
    y = case["y"]

    def run(in32, in64):
        out = {}
        for dtype, inputs in (("float32", in32), ("float64", in64)):
            model = case["models"][dtype]
            params, state, x, x2 = inputs
            opts = _options(case, model, params, state, x2)
            _, manual = jaxbp.loss_and_grad(model, params, x, y, **opts)
            _, auto = jaxbp.loss_and_grad(
                model, params, x, y, backprop="autodiff", **opts
            )
            out[dtype] = {"manual": manual, "autodiff": auto}
            if dtype == "float64":
                out[dtype]["fd"] = finite_difference_grads(
                    lambda p, m=model, x=x, o=opts: jaxbp.loss(m, p, x, y, **o),
                    params,
                )
        return out

    args = (_inputs(case, np.float32), _inputs(case, np.float64))
    return jax.device_get(_common.compile_fast(run, *args)(*args))


def _errors(a_tree, b_tree):
    """(whole-gradient relative error, worst per-leaf relative error, max |a−b|),
    all by ``_common.relative_error`` (``check_grads``' measure)."""
    leaves = zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree))
    per_leaf = [relative_error(a, b) for a, b in leaves]
    diff = max(
        float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for a, b in zip(jax.tree.leaves(a_tree), jax.tree.leaves(b_tree))
    )
    return relative_error(a_tree, b_tree), max(per_leaf), diff


def _check_grads(case, dtypes=("float32", "float64")):
    """jaxbp.check_grads verdicts: float32 vs autodiff; float64 vs autodiff and
    finite differences."""
    result = {}
    for dtype in dtypes:
        model = case["models"][dtype]
        params, state, x, x2 = _inputs(case, getattr(np, dtype))
        opts = _options(case, model, params, state, x2)
        report = jaxbp.check_grads(
            model,
            params,
            x,
            case["y"],
            finite_differences=dtype == "float64",
            **opts,
        )
        result[dtype] = {
            "ok": report.ok,
            "max_leaf_autodiff_rel": report.max_autodiff_rel,
            "max_leaf_fd_rel": report.max_fd_rel,
        }
    return result


def plot(results, path):
    plt = pyplot()
    cases = results["cases"]
    names = [c["case"] for c in cases]
    series = [
        ("autodiff_float32", "manual vs jax.grad, float32", "tab:blue"),
        ("autodiff_float64", "manual vs jax.grad, float64", "tab:orange"),
        ("fd_float64", "manual vs finite differences, float64", "tab:green"),
    ]
    floor = 1e-18
    fig, ax = plt.subplots(figsize=(11, 4.8))
    xs = np.arange(len(names))
    width = 0.27
    base = np.log10(floor)
    for j, (key, label, color) in enumerate(series):
        vals = np.log10(np.maximum([c[key] for c in cases], floor))
        ax.bar(
            xs + (j - 1) * width,
            vals - base,
            width,
            bottom=base,
            label=label,
            color=color,
        )
        ax.axhline(np.log10(TOLERANCES[key]), color=color, ls="--", lw=1)
        exact = np.asarray([c[key] for c in cases]) == 0
        ax.plot(
            xs[exact] + (j - 1) * width,
            np.full(exact.sum(), base + 0.5),
            "v",
            color=color,
            ms=5,
        )
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("log10 relative error of the whole gradient")
    ax.set_ylim(base, 3)
    ax.set_yticks(np.arange(base, 3, 2))
    ax.set_title(
        "Manual backprop vs jax.grad and finite differences, every layer and loss "
        "(dashed: tolerances; ▼: exactly equal)",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper center", ncol=3)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    _common.save_figure(fig, path)
    plt.close(fig)


def _case_entry(case, g) -> dict:
    """One case's errors: manual vs jax.grad (float32, float64) and manual vs
    finite differences (float64), whole gradient and worst leaf."""
    a32, leaf32, _ = _errors(g["float32"]["manual"], g["float32"]["autodiff"])
    a64, leaf64, _ = _errors(g["float64"]["manual"], g["float64"]["autodiff"])
    fd, leaf_fd, fd_abs = _errors(g["float64"]["manual"], g["float64"]["fd"])
    entry = {
        "case": case["name"],
        "group": case["group"],
        "loss": case["loss"],
        "n_params": sum(
            int(np.size(v)) for v in jax.tree.leaves(g["float64"]["manual"])
        ),
        "autodiff_float32": a32,
        "autodiff_float64": a64,
        "fd_float64": fd,
        "worst_leaf": {
            "autodiff_float32": leaf32,
            "autodiff_float64": leaf64,
            "fd_float64": leaf_fd,
        },
        "fd_max_abs": fd_abs,
    }
    entry["ok"] = all(entry[k] <= tol for k, tol in TOLERANCES.items())
    return entry


def _print_cases(results):
    cases = results["cases"]
    rows = []
    for e in cases:
        verdicts = [v["ok"] for v in e.get("check_grads", {}).values()]
        rows.append(
            [
                e["case"],
                e["n_params"],
                e["autodiff_float32"],
                e["autodiff_float64"],
                e["fd_float64"],
                ("ok" if all(verdicts) else "FAIL") if verdicts else "-",
                "ok" if e["ok"] else "FAIL",
            ]
        )
    print_table(
        ["case", "params", "f32 vs jax.grad", "f64 vs jax.grad", "f64 vs FD"]
        + ["check_grads", "within tol"],
        rows,
        title=f"relative error of the manual gradient ({len(cases)} cases, "
        f"batch {BATCH})",
    )
    top = results["max"]
    print(
        f"max: float32 {top['autodiff_float32']:.2e} (tol 1e-5), "
        f"float64 {top['autodiff_float64']:.2e} (tol 1e-10), "
        f"FD {top['fd_float64']:.2e} (tol 1e-6); "
        f"all within tolerance: {results['all_within_tolerance']}; "
        f"check_grads ok on {results['check_grads_cases']} cases: "
        f"{results['check_grads_all_ok']} ({results['seconds']['total']:.1f} s)"
    )


def main(argv=None) -> dict:
    args = parse_args(NAME, __doc__.splitlines()[0], argv)
    all_cases = _gradient_check_cases.cases()
    if args.quick:
        all_cases = [c for c in all_cases if c[0] in QUICK_CASES]
    with Timer() as total, jax.enable_x64(True):
        built = _build(all_cases)
        with Timer() as t_grads:
            cases = [_case_entry(case, _case_gradients(case)) for case in built]
        with Timer() as t_check:
            for case, entry in zip(built, cases):
                if not args.quick:
                    entry["check_grads"] = _check_grads(case)
                elif case["name"] in QUICK_CHECK_GRADS:
                    entry["check_grads"] = _check_grads(case, ("float64",))
    checked = [e for e in cases if "check_grads" in e]
    results = {
        "description": (
            "relative error max|a-b|/max(|a|,|b|) over the whole gradient of each "
            "case (manual = hand-written backward pass; the textbook-form cases "
            "use conv2d_backward_textbook / checkpointed_backward_textbook); "
            "check_grads: jaxbp's per-leaf verdict (ok) on the same problem"
        ),
        "tolerances": TOLERANCES,
        "batch": BATCH,
        "cases": cases,
        "max": {k: max(e[k] for e in cases) for k in TOLERANCES},
        "all_within_tolerance": all(e["ok"] for e in cases),
        "check_grads_cases": len(checked),
        "check_grads_all_ok": all(
            v["ok"] for e in checked for v in e["check_grads"].values()
        ),
        "seconds": {
            "gradients": t_grads.seconds,
            "check_grads": t_check.seconds,
            "total": total.seconds,
        },
    }
    write_json(args, results)
    plot(results, figure_path(args))
    _print_cases(results)
    return results


if __name__ == "__main__":
    main()
