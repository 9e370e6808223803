"""Gradient checking: the hand-written backward pass against autodiff and finite differences.

For every parameter leaf, ``check_grads`` compares the manual gradient ``a``
with ``jax.grad``'s ``b`` of the same forward pass::

    max_abs = max |a − b|        rel = max |a − b| / max(max |a|, max |b|)

(``rel = 0`` when both are zero). A leaf passes when ``max_abs`` is within the
tolerance (1e-10 in float64, 1e-5 in float32) times the *leaf's own scale*::

    scale = max(max |a|, max |b|, T)        T = max |b₃₂ − b₆₄| / ε₃₂

``T`` is the leaf's term scale: how far ``jax.grad``'s float32 gradient of the
leaf is from its float64 one, in units of float32's ε, i.e. the magnitude of
the terms whose rounding that is. It matters only for a sum that nearly
cancels: a bias gradient ``Σ_batch dz`` of terms much larger than itself (or
one that is exactly 0, as before batch norm) carries the rounding of its
terms, so its own relative error can be large although both passes are right
to the precision of the dtype; its ``T`` is its terms' size. ``T`` is measured
on autodiff, never on the code under test, and on the leaf itself, never on
the rest of the model: a wrong rule in a leaf 1e5 times smaller than the
largest gradient still fails.

A model that is not float64 is checked twice: in its own dtype (``rel``), and
cast to float64, manual against autodiff at 1e-10 (``float64_rel``), where a
wrong rule cannot hide behind float32 rounding.

When asked, the manual float64 gradient is also compared with centred finite
differences, one coordinate at a time with the fourth-order stencil
``(−f(θ+2h) + 8 f(θ+h) − 8 f(θ−h) + f(θ−2h)) / 12h`` with h = 1e-6: its
truncation error is O(h⁴), negligible, so what is left is rounding, about
1.5 ε|f|/h ≈ 3e-10 |f|, and the small step keeps a ReLU unit from crossing its
kink during the check in all but rare cases; tolerance 1e-6 relative; a leaf
whose gradient is zero or tiny passes when the differences are within that
rounding (``max_abs <= 1e-9 · max(1, |L|)``), since no relative error can be
small there. All coordinates are evaluated in one compiled, batched
``lax.map``.

Finite differences are only meaningful where the loss is smooth: a ReLU unit
or hinge margin within ~h of its kink makes them disagree, correctly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxbp.backprop import autodiff_loss_and_grad, manual_loss_and_grad, prepare
from jaxbp.model import Model

AUTODIFF_RTOL = {"float64": 1e-10, "float32": 1e-5, "bfloat16": 1e-2, "float16": 1e-2}
FD_RTOL = 1e-6
FD_ATOL = 1e-9  # per unit of max(1, |loss|): the stencil's rounding is ∝ |loss|
FD_EPS = 1e-6
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclasses.dataclass(frozen=True)
class LeafCheck:
    """One parameter leaf's comparison (see the module docstring)."""

    path: str
    shape: tuple[int, ...]
    autodiff_max_abs: float
    autodiff_rel: float
    fd_max_abs: float | None
    fd_rel: float | None
    ok: bool
    relative_ok: bool = True  # False: passed only thanks to the term scale
    float64_max_abs: float | None = None  # None: the model is float64 already
    float64_rel: float | None = None
    term_scale: float = 0.0


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """The leaf-by-leaf comparison; ``ok`` when every leaf passes, ``str()`` a table."""

    leaves: tuple[LeafCheck, ...]
    dtype: str
    loss_value: float
    autodiff_rtol: float
    fd_rtol: float | None

    @property
    def ok(self) -> bool:
        return all(leaf.ok for leaf in self.leaves)

    @property
    def max_autodiff_rel(self) -> float:
        return max((leaf.autodiff_rel for leaf in self.leaves), default=0.0)

    @property
    def max_fd_rel(self) -> float | None:
        values = [leaf.fd_rel for leaf in self.leaves if leaf.fd_rel is not None]
        return max(values) if values else None

    def __str__(self) -> str:
        float64 = self.dtype != "float64"
        header = ["parameter", "shape", "max|manual-autodiff|", "rel err"]
        header += ["rel err (float64)"] if float64 else []
        if self.fd_rtol is not None:
            header += ["max|manual-fd|", "rel err (fd)"]
        rows = [[*header, "ok"]]
        for leaf in self.leaves:
            row = [
                leaf.path,
                "x".join(map(str, leaf.shape)) or "scalar",
                f"{leaf.autodiff_max_abs:.2e}",
                f"{leaf.autodiff_rel:.2e}",
            ]
            row += [f"{leaf.float64_rel:.2e}"] if float64 else []
            if self.fd_rtol is not None:
                row += [f"{leaf.fd_max_abs:.2e}", f"{leaf.fd_rel:.2e}"]
            row.append(("ok" if leaf.relative_ok else "ok*") if leaf.ok else "FAIL")
            rows.append(row)
        return "\n".join([*_table_lines(rows), self._summary()])

    def _summary(self) -> str:
        tolerance = f"autodiff rtol {self.autodiff_rtol:g} ({self.dtype})"
        if self.dtype != "float64":
            tolerance += f" and {AUTODIFF_RTOL['float64']:g} (float64)"
        if self.fd_rtol is not None:
            tolerance += f", finite differences rtol {self.fd_rtol:g} (float64)"
        verdict = "all gradients agree" if self.ok else "GRADIENT MISMATCH"
        if self.ok and not all(leaf.relative_ok for leaf in self.leaves):
            verdict += (
                " (ok*: relative error above tolerance, difference within the "
                "rounding of the leaf's terms / of finite differences)"
            )
        return f"loss {self.loss_value:.6g}; {tolerance}: {verdict}"


def _table_lines(rows) -> list[str]:
    """Left-aligned columns with a rule under the header row."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def max_abs_and_relative_error(a, b) -> tuple[float, float]:
    """(max |a − b|, max |a − b| / max(max |a|, max |b|)), 0 when both are zero."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(a - b)))
    scale = float(max(np.max(np.abs(a)), np.max(np.abs(b))))
    if not (math.isfinite(max_abs) and math.isfinite(scale)):
        return math.inf, math.inf
    return max_abs, (max_abs / scale if scale > 0 else 0.0)


def term_scale(autodiff32, autodiff64) -> float:
    """T = max |b₃₂ − b₆₄| / ε₃₂: the size of the terms summed into a leaf, as
    the float32 rounding of ``jax.grad``'s gradient of it shows (a nearly
    cancelling sum has terms much larger than itself)."""
    max_abs, _ = max_abs_and_relative_error(autodiff32, autodiff64)
    return max_abs / FLOAT32_EPS


def within_rounding(a, b, rtol: float, term_scale: float = 0.0) -> bool:
    """max |a − b| <= rtol · max(max |a|, max |b|, T): the leaf's own scale."""
    max_abs, rel = max_abs_and_relative_error(a, b)
    if not math.isfinite(max_abs):
        return False
    return rel <= rtol or max_abs <= rtol * term_scale


def leaf_paths(model: Model, params) -> list[str]:
    """Readable leaf paths: ``0.dense/w`` is layer 0 (a dense layer), its ``w``."""
    names = model.layer_names
    paths = []
    for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]:
        parts = []
        for i, entry in enumerate(path):
            if isinstance(entry, jax.tree_util.SequenceKey):
                label = str(entry.idx)
                if i == 0 and entry.idx < len(names):
                    label += f".{names[entry.idx]}"
            elif isinstance(entry, jax.tree_util.DictKey):
                label = str(entry.key)
            else:
                label = str(getattr(entry, "name", entry))
            parts.append(label)
        paths.append("/".join(parts))
    return paths


def finite_difference_grads(value_fn, params, *, eps: float = FD_EPS):
    """Fourth-order centred finite differences of ``value_fn`` at ``params``,
    every coordinate, batched through ``lax.map``; same tree as ``params``."""
    flat, unravel = ravel_pytree(params)
    n = flat.size
    if n == 0:
        return params

    def f(v):
        return value_fn(unravel(v))

    def coordinate(i):
        e = jnp.zeros_like(flat).at[i].set(eps)
        return (
            -f(flat + 2 * e) + 8 * f(flat + e) - 8 * f(flat - e) + f(flat - 2 * e)
        ) / (12 * eps)

    batch = max(1, min(n, (1 << 22) // max(n, 1)))
    return unravel(jax.lax.map(coordinate, jnp.arange(n), batch_size=batch))


_STATIC = ("model", "loss_fn", "train", "fd_eps")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _gradients(model, loss_fn, params, state, x, target, *, key, train, fd_eps=None):
    """(loss, manual, autodiff, finite differences or None) in one compiled
    program, in the dtype of the arguments."""
    run = {"key": key, "train": train}
    manual = manual_loss_and_grad(model, loss_fn, params, state, x, target, **run)
    autodiff = autodiff_loss_and_grad(model, loss_fn, params, state, x, target, **run)
    fd = None
    if fd_eps is not None:

        def value_fn(p):
            out, _, _ = model.forward(p, state, x, **run)
            return loss_fn.value(out, target)

        fd = finite_difference_grads(value_fn, params, eps=fd_eps)
    return manual.value, manual.grads, autodiff.grads, fd


_autodiff = jax.jit(
    autodiff_loss_and_grad, static_argnames=("model", "loss_fn", "train")
)


def _cast(tree, dtype):
    """Every floating leaf of ``tree`` in ``dtype`` (integer labels, keys as they are)."""

    def cast(a):
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


def _in_dtype(model, loss_fn, params, state, x, target, dtype, **run):
    """``_gradients`` of the model cast to ``dtype`` (float64 with x64 on)."""
    with jax.enable_x64(True):
        cast = dataclasses.replace(model, dtype=jnp.dtype(dtype))
        data = _cast((params, state, x, target), dtype)
        results = _gradients(cast, loss_fn, *data, **run)
        return jax.tree.map(np.asarray, results)


class _Tolerances(NamedTuple):
    rtol: float  # manual vs autodiff in the model's dtype
    fd_rtol: float
    fd_floor: float  # absolute allowance against finite differences


class _LeafGradients(NamedTuple):
    """One leaf's gradients: manual and autodiff in the model's dtype, both in
    float64 (None when the model is float64), autodiff in float32, and finite
    differences (None when not asked)."""

    manual: np.ndarray
    autodiff: np.ndarray
    manual64: np.ndarray | None
    autodiff64: np.ndarray | None
    autodiff32: np.ndarray
    fd: np.ndarray | None


def _check_leaf(path: str, g: _LeafGradients, tol: _Tolerances) -> LeafCheck:
    """The verdict on one leaf (see the module docstring)."""
    rtol64 = AUTODIFF_RTOL["float64"]
    manual64 = g.manual if g.manual64 is None else g.manual64
    autodiff64 = g.autodiff if g.autodiff64 is None else g.autodiff64
    scale = term_scale(g.autodiff32, autodiff64)
    a_abs, a_rel = max_abs_and_relative_error(g.manual, g.autodiff)
    ok = within_rounding(g.manual, g.autodiff, tol.rtol, scale)
    relative_ok = a_rel <= tol.rtol
    f64_abs = f64_rel = None
    if g.manual64 is not None:
        f64_abs, f64_rel = max_abs_and_relative_error(manual64, autodiff64)
        ok = ok and within_rounding(manual64, autodiff64, rtol64, scale)
        relative_ok = relative_ok and f64_rel <= rtol64
    f_abs = f_rel = None
    if g.fd is not None:
        f_abs, f_rel = max_abs_and_relative_error(manual64, g.fd)
        ok = ok and (f_rel <= tol.fd_rtol or f_abs <= tol.fd_floor)
        relative_ok = relative_ok and f_rel <= tol.fd_rtol
    return LeafCheck(
        path,
        tuple(np.shape(g.manual)),
        a_abs,
        a_rel,
        f_abs,
        f_rel,
        ok,
        relative_ok,
        f64_abs,
        f64_rel,
        scale,
    )


def check_grads(
    model: Model,
    params,
    x,
    y,
    *,
    loss: str = "cross_entropy",
    finite_differences: bool = False,
    state=None,
    key=None,
    train: bool = True,
    rtol: float | None = None,
    fd_rtol: float = FD_RTOL,
    fd_atol: float = FD_ATOL,
    fd_eps: float = FD_EPS,
) -> GradCheckReport:
    """Compare the manual gradient with ``jax.grad`` (and finite differences).

    Returns a :class:`GradCheckReport`: ``report.ok`` is True when every leaf
    is within tolerance of its own scale (see the module docstring);
    ``print(report)`` shows the table. A model that is not float64 is also
    cast to float64 (x64 is switched on for that) and checked there. With
    ``finite_differences=True`` the manual float64 gradient is compared with
    centred finite differences too.
    """
    x, target, loss_fn, state = prepare(model, params, x, y, loss, state)
    dtype = jnp.dtype(model.dtype).name
    rtol = AUTODIFF_RTOL.get(dtype, 1e-5) if rtol is None else rtol
    value, leaves = _leaf_gradients(
        model,
        loss_fn,
        (params, state, x, target),
        fd_eps=fd_eps if finite_differences else None,
        key=key,
        train=train,
    )
    tolerances = _Tolerances(rtol, fd_rtol, fd_atol * max(1.0, abs(float(value))))
    checks = [
        _check_leaf(path, leaf, tolerances)
        for path, leaf in zip(leaf_paths(model, params), leaves)
    ]
    return GradCheckReport(
        tuple(checks),
        dtype,
        float(value),
        rtol,
        fd_rtol if finite_differences else None,
    )


def _leaf_gradients(model, loss_fn, data, *, fd_eps, key, train):
    """(loss, [_LeafGradients per leaf]): every gradient ``check_grads`` compares."""
    run = {"key": key, "train": train}
    dtype = jnp.dtype(model.dtype).name
    if dtype == "float64":
        value, manual, autodiff, fd = _in_dtype(
            model, loss_fn, *data, "float64", fd_eps=fd_eps, **run
        )
        manual64 = autodiff64 = None
    else:
        value, manual, autodiff, _ = _gradients(model, loss_fn, *data, **run)
        _, manual64, autodiff64, fd = _in_dtype(
            model, loss_fn, *data, "float64", fd_eps=fd_eps, **run
        )
    if dtype == "float32":
        autodiff32 = autodiff
    else:
        model32 = dataclasses.replace(model, dtype=jnp.float32)
        autodiff32 = _autodiff(model32, loss_fn, *_cast(data, jnp.float32), **run)
        autodiff32 = autodiff32.grads
    n = len(jax.tree.leaves(data[0]))

    def leaves(tree):
        if tree is None:
            return [None] * n
        return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]

    trees = (manual, autodiff, manual64, autodiff64, autodiff32, fd)
    return value, [_LeafGradients(*g) for g in zip(*map(leaves, trees))]
