"""Gradient checking: the hand-written backward pass against autodiff and finite differences.

For every parameter leaf, ``check_grads`` compares the manual gradient ``a``
with a reference ``b`` by

    max_abs = max |a − b|        rel = max |a − b| / max(max |a|, max |b|)

(``rel = 0`` when both are zero). A leaf also passes when its ``max_abs`` is
within the tolerance times the largest gradient entry of the whole model: a
bias gradient that is a sum of terms nearly cancelling (``Σ_batch dz`` close to
0) carries the rounding of its terms, so its own relative error can be large in
float32 although both passes are right to the precision of the dtype.
References:

- ``jax.grad`` of the same forward pass, in the parameters' dtype
  (tolerance 1e-10 in float64, 1e-5 in float32);
- when asked, centred finite differences in float64, one coordinate at a time
  with the fourth-order stencil
  ``(−f(θ+2h) + 8 f(θ+h) − 8 f(θ−h) + f(θ−2h)) / 12h`` with h = 1e-6: its
  truncation error is O(h⁴), negligible, so what is left is rounding,
  about 1.5 ε|f|/h ≈ 3e-10 |f|, and the small step keeps a ReLU unit from
  crossing its kink during the check in all but rare cases;
  tolerance 1e-6 relative; a leaf whose gradient is zero or tiny passes when
  the differences are within that rounding (``max_abs <= 1e-9 · max(1, |L|)``),
  since no relative error can be small there. All coordinates are evaluated in one compiled,
  batched ``lax.map``.

Finite differences are only meaningful where the loss is smooth: a ReLU unit
or hinge margin within ~h of its kink makes them disagree, correctly.
"""

from __future__ import annotations

import dataclasses
import functools
import math

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


@dataclasses.dataclass(frozen=True)
class LeafCheck:
    """One parameter leaf's comparison."""

    path: str
    shape: tuple[int, ...]
    autodiff_max_abs: float
    autodiff_rel: float
    fd_max_abs: float | None
    fd_rel: float | None
    ok: bool
    relative_ok: bool = True  # False: passed only on the absolute allowance


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
        header = ["parameter", "shape", "max|manual-autodiff|", "rel err"]
        if self.fd_rtol is not None:
            header += ["max|manual-fd|", "rel err (fd)"]
        header.append("ok")
        rows = [header]
        for leaf in self.leaves:
            row = [
                leaf.path,
                "x".join(map(str, leaf.shape)) or "scalar",
                f"{leaf.autodiff_max_abs:.2e}",
                f"{leaf.autodiff_rel:.2e}",
            ]
            if self.fd_rtol is not None:
                row += [f"{leaf.fd_max_abs:.2e}", f"{leaf.fd_rel:.2e}"]
            row.append(("ok" if leaf.relative_ok else "ok*") if leaf.ok else "FAIL")
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        tolerance = f"autodiff rtol {self.autodiff_rtol:g} ({self.dtype})"
        if self.fd_rtol is not None:
            tolerance += f", finite differences rtol {self.fd_rtol:g} (float64)"
        verdict = "all gradients agree" if self.ok else "GRADIENT MISMATCH"
        if self.ok and not all(leaf.relative_ok for leaf in self.leaves):
            verdict += (
                " (ok*: relative error above tolerance, difference within rounding "
                "of the largest gradient / of finite differences)"
            )
        lines.append(f"loss {self.loss_value:.6g}; {tolerance}: {verdict}")
        return "\n".join(lines)


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


def gradient_scale(grads) -> float:
    """The largest |entry| over every leaf of a gradient tree (0 for no leaves)."""
    return max(
        (float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grads) if g.size),
        default=0.0,
    )


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


_STATIC = ("model", "loss_fn", "train")
_manual = jax.jit(manual_loss_and_grad, static_argnames=_STATIC)
_autodiff = jax.jit(autodiff_loss_and_grad, static_argnames=_STATIC)


@functools.partial(jax.jit, static_argnames=(*_STATIC, "eps"))
def _manual_and_finite_differences(
    model, loss_fn, params, state, x, target, *, key, train, eps
):
    """The manual gradient and the finite-difference one, in one compiled program."""

    def value_fn(p):
        out, _, _ = model.forward(p, state, x, key=key, train=train)
        return loss_fn.value(out, target)

    manual = manual_loss_and_grad(
        model, loss_fn, params, state, x, target, key=key, train=train
    )
    return manual.grads, finite_difference_grads(value_fn, params, eps=eps)


def _to_float64(tree):
    return jax.tree.map(
        lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a,
        tree,
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

    Returns a :class:`GradCheckReport`: ``report.ok`` is True when every leaf's
    relative error is within tolerance; ``print(report)`` shows the table.
    With ``finite_differences=True`` the model, data and state are cast to
    float64 (x64 is switched on for the check) and the manual float64 gradient
    is compared with centred finite differences too.
    """
    x, target, loss_fn, state = prepare(model, params, x, y, loss, state)
    dtype = jnp.dtype(model.dtype).name
    rtol = AUTODIFF_RTOL.get(dtype, 1e-5) if rtol is None else rtol

    run = {"key": key, "train": train}
    got = _manual(model, loss_fn, params, state, x, target, **run)
    want = _autodiff(model, loss_fn, params, state, x, target, **run)
    auto_errors = [
        max_abs_and_relative_error(a, b)
        for a, b in zip(jax.tree.leaves(got.grads), jax.tree.leaves(want.grads))
    ]
    scale = gradient_scale(want.grads)

    fd_errors = None
    if finite_differences:
        fd_errors = _finite_difference_errors(
            model, loss_fn, params, state, x, target, fd_eps=fd_eps, **run
        )

    leaves = []
    for i, (path, leaf) in enumerate(
        zip(leaf_paths(model, params), jax.tree.leaves(params))
    ):
        a_abs, a_rel = auto_errors[i]
        f_abs, f_rel = fd_errors[i] if fd_errors else (None, None)
        relative_ok = a_rel <= rtol and (f_rel is None or f_rel <= fd_rtol)
        fd_floor = fd_atol * max(1.0, abs(float(got.value)))
        fd_ok = f_rel is None or f_rel <= fd_rtol or f_abs <= fd_floor
        ok = (a_rel <= rtol or a_abs <= rtol * scale) and fd_ok
        leaves.append(
            LeafCheck(
                path, tuple(leaf.shape), a_abs, a_rel, f_abs, f_rel, ok, relative_ok
            )
        )
    return GradCheckReport(
        tuple(leaves),
        dtype,
        float(got.value),
        rtol,
        fd_rtol if finite_differences else None,
    )


def _finite_difference_errors(
    model, loss_fn, params, state, x, target, *, fd_eps, key, train
):
    """Per-leaf errors of the manual float64 gradient against finite differences."""
    with jax.enable_x64(True):
        manual64, fd = _manual_and_finite_differences(
            dataclasses.replace(model, dtype=jnp.float64),
            loss_fn,
            *_to_float64((params, state, x, target)),
            key=key,
            train=train,
            eps=fd_eps,
        )
        return [
            max_abs_and_relative_error(a, b)
            for a, b in zip(jax.tree.leaves(manual64), jax.tree.leaves(fd))
        ]
