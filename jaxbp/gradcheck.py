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
small there. The coordinates are evaluated a chunk at a time by one
compiled, batched program (``jaxbp.finite_differences``: the chunk bounds
the memory, whatever the model).

With ``fd_samples=K`` only a random sample of K coordinates per leaf is
checked (CS231n's sparse gradient check; every coordinate of a leaf with at
most K), drawn with ``numpy.random.default_rng((fd_seed, leaf index))``; the
relative error against finite differences is then over the sampled
coordinates only. A sample can miss a wrong entry: a rule that is wrong in a
single coordinate of a leaf of n is caught with probability K/n (autodiff,
which is compared on every coordinate, still catches it).

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

from jaxbp.backprop import autodiff_loss_and_grad, manual_loss_and_grad, prepare
from jaxbp.checks import check_int, check_seed
from jaxbp.finite_differences import (  # noqa: F401 (finite_difference_grads: public)
    FD_EPS,
    finite_difference_grads,
    loss_finite_differences,
    sample_coordinates,
)
from jaxbp.model import Model

AUTODIFF_RTOL = {"float64": 1e-10, "float32": 1e-5, "bfloat16": 1e-2, "float16": 1e-2}
FD_RTOL = 1e-6
FD_ATOL = 1e-9  # per unit of max(1, |loss|): the stencil's rounding is ∝ |loss|
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
    fd_coordinates: int | None = None  # coordinates compared with finite differences


@dataclasses.dataclass(frozen=True)
class GradCheckReport:
    """The leaf-by-leaf comparison; ``ok`` when every leaf passes, ``str()`` a table."""

    leaves: tuple[LeafCheck, ...]
    dtype: str
    loss_value: float
    autodiff_rtol: float
    fd_rtol: float | None
    fd_samples: int | None = None  # None: every coordinate
    fd_seed: int = 0

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
            header += ["fd coords", "max|manual-fd|", "rel err (fd)"]
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
                size = math.prod(leaf.shape)
                row += [f"{leaf.fd_coordinates}/{size}"]
                row += [f"{leaf.fd_max_abs:.2e}", f"{leaf.fd_rel:.2e}"]
            row.append(("ok" if leaf.relative_ok else "ok*") if leaf.ok else "FAIL")
            rows.append(row)
        return "\n".join([*_table_lines(rows), self._summary()])

    def _summary(self) -> str:
        tolerance = f"autodiff rtol {self.autodiff_rtol:g} ({self.dtype})"
        if self.dtype != "float64":
            tolerance += f" and {AUTODIFF_RTOL['float64']:g} (float64)"
        if self.fd_rtol is not None:
            tolerance += f", finite differences rtol {self.fd_rtol:g} (float64"
            tolerance += (
                ", every coordinate)"
                if self.fd_samples is None
                else f", a random sample of {self.fd_samples} coordinates per leaf,"
                f" seed {self.fd_seed})"
            )
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


_STATIC = ("model", "loss_fn", "train")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _gradients(model, loss_fn, params, state, x, target, *, key, train):
    """(loss, manual, autodiff) in one compiled program, in the arguments' dtype."""
    run = {"key": key, "train": train}
    manual = manual_loss_and_grad(model, loss_fn, params, state, x, target, **run)
    autodiff = autodiff_loss_and_grad(model, loss_fn, params, state, x, target, **run)
    return manual.value, manual.grads, autodiff.grads


_autodiff = jax.jit(
    autodiff_loss_and_grad, static_argnames=("model", "loss_fn", "train")
)


def _cast(tree, dtype):
    """Every floating leaf of ``tree`` in ``dtype`` (integer labels, keys as they are)."""

    def cast(a):
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


def _in_float64(model, loss_fn, data, **run):
    """``_gradients`` of the model cast to float64 (x64 switched on)."""
    with jax.enable_x64(True):
        cast = dataclasses.replace(model, dtype=jnp.dtype("float64"))
        results = _gradients(cast, loss_fn, *_cast(data, "float64"), **run)
        return jax.tree.map(np.asarray, results)


def _finite_differences64(
    model, loss_fn, data, coordinates, eps, progress, paths, **run
):
    """``loss_finite_differences`` of the model cast to float64 (x64 on);
    ``progress(done, total, path, n)`` after each leaf."""
    report = None
    if progress is not None:

        def report(done, total, i, n):
            progress(done, total, paths[i], n)

    with jax.enable_x64(True):
        cast = dataclasses.replace(model, dtype=jnp.dtype("float64"))
        return loss_finite_differences(
            cast,
            loss_fn,
            _cast(data, "float64"),
            coordinates,
            eps=eps,
            progress=report,
            **run,
        )


class _Tolerances(NamedTuple):
    rtol: float  # manual vs autodiff in the model's dtype
    fd_rtol: float
    fd_floor: float  # absolute allowance against finite differences


class _LeafGradients(NamedTuple):
    """One leaf's gradients: manual and autodiff in the model's dtype, both in
    float64 (None when the model is float64), autodiff in float32, and finite
    differences at the flat ``fd_coordinates`` (None when not asked)."""

    manual: np.ndarray
    autodiff: np.ndarray
    manual64: np.ndarray | None
    autodiff64: np.ndarray | None
    autodiff32: np.ndarray
    fd: np.ndarray | None
    fd_coordinates: np.ndarray | None


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
    f_abs = f_rel = n_fd = None
    if g.fd is not None:
        sampled = np.ravel(manual64)[g.fd_coordinates]
        f_abs, f_rel = max_abs_and_relative_error(sampled, g.fd)
        ok = ok and (f_rel <= tol.fd_rtol or f_abs <= tol.fd_floor)
        relative_ok = relative_ok and f_rel <= tol.fd_rtol
        n_fd = len(g.fd_coordinates)
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
        n_fd,
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
    fd_samples: int | None = None,
    fd_seed: int = 0,
    progress=None,
) -> GradCheckReport:
    """Compare the manual gradient with ``jax.grad`` (and finite differences).

    Returns a :class:`GradCheckReport`: ``report.ok`` is True when every leaf
    is within tolerance of its own scale (see the module docstring);
    ``print(report)`` shows the table. A model that is not float64 is also
    cast to float64 (x64 is switched on for that) and checked there. With
    ``finite_differences=True`` the manual float64 gradient is compared with
    centred finite differences too: on every coordinate (``fd_samples=None``)
    or on a random sample of ``fd_samples`` coordinates per leaf drawn with
    ``fd_seed`` (see :func:`sample_coordinates`). A sample can miss a single
    wrong entry; autodiff is compared on every coordinate regardless.
    ``progress(done, total, path, n)``, if given, is called after each leaf's
    finite differences (``n`` coordinates of leaf ``path``).
    """
    check_int("fd_samples", fd_samples, 1, allow_none=True)
    check_seed(fd_seed, "fd_seed")
    x, target, loss_fn, state = prepare(model, params, x, y, loss, state)
    dtype = jnp.dtype(model.dtype).name
    rtol = AUTODIFF_RTOL.get(dtype, 1e-5) if rtol is None else rtol
    data = (params, state, x, target)
    run = {"key": key, "train": train}
    value, leaves = _leaf_gradients(model, loss_fn, data, **run)
    paths = leaf_paths(model, params)
    if finite_differences:
        coordinates = sample_coordinates(params, fd_samples, fd_seed)
        fd = _finite_differences64(
            model, loss_fn, data, coordinates, fd_eps, progress, paths, **run
        )
        leaves = [
            leaf._replace(fd=f, fd_coordinates=c)
            for leaf, f, c in zip(leaves, fd, coordinates)
        ]
    tolerances = _Tolerances(rtol, fd_rtol, fd_atol * max(1.0, abs(float(value))))
    checks = [_check_leaf(path, leaf, tolerances) for path, leaf in zip(paths, leaves)]
    return GradCheckReport(
        tuple(checks),
        dtype,
        float(value),
        rtol,
        fd_rtol if finite_differences else None,
        fd_samples,
        fd_seed,
    )


def _leaf_gradients(model, loss_fn, data, **run):
    """(loss, [_LeafGradients per leaf]): the gradients ``check_grads`` compares
    with autodiff (finite differences not yet filled in)."""
    dtype = jnp.dtype(model.dtype).name
    if dtype == "float64":
        value, manual, autodiff = _in_float64(model, loss_fn, data, **run)
        manual64 = autodiff64 = None
    else:
        value, manual, autodiff = _gradients(model, loss_fn, *data, **run)
        _, manual64, autodiff64 = _in_float64(model, loss_fn, data, **run)
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

    trees = (manual, autodiff, manual64, autodiff64, autodiff32, None, None)
    return value, [_LeafGradients(*g) for g in zip(*map(leaves, trees))]
