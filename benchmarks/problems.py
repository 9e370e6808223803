"""The problems the sections time: MLPs with data, their gradients, FLOP counts,
the peak matmul.

FLOPs of a gradient are counted, not taken from XLA: a dense layer's forward
is ``2·B·n_in·n_out``; the backward pass computes ``dW = xᵀ dy`` and
``dx = dy Wᵀ``, two more of the same size, except that the first layer's
``dx`` (the gradient for the input data) is not needed. Elementwise work
(activations, bias, softmax) is not counted: it is O(B·n), not O(B·n²).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import jaxbp


def dense_sizes_flops(sizes: Sequence[int], batch: int) -> tuple[int, int]:
    """(forward, gradient) FLOPs of an MLP's dense layers, counted by hand:
    forward 2·B·Σ n_in·n_out; gradient = forward + backward, backward =
    2 × forward − the first layer's dx (2·B·n_0·n_1)."""
    pairs = list(itertools.pairwise(sizes))
    forward = sum(2 * batch * a * b for a, b in pairs)
    first_dx = 2 * batch * pairs[0][0] * pairs[0][1]
    return forward, forward + 2 * forward - first_dx


def size_name(sizes: Sequence[int], batch: int) -> str:
    """``"64-128-10 B32"``: an MLP's sizes and batch, as the rows name them."""
    return "-".join(map(str, sizes)) + f" B{batch}"


def mlp_problem(sizes: Sequence[int], batch: int, *, seed: int = 0, dtype="float32"):
    """A ReLU MLP with its params, inputs and integer labels, all of ``dtype``
    (set explicitly: the result does not depend on jax_enable_x64)."""
    dtype = jnp.dtype(dtype)
    model = jaxbp.mlp(list(sizes), "relu", dtype=dtype)
    params = model.init(jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, sizes[0])), dtype)
    y = jnp.asarray(rng.integers(0, sizes[-1], size=batch), jnp.int32)
    return model, params, x, y


def reference_loss(params, x, y):
    """The same ReLU MLP and cross-entropy in a dozen lines of plain JAX (no
    jaxbp), the baseline a JAX user would write and hand to jax.value_and_grad."""
    dense = [p for p in params if p != ()]
    h = x
    for i, p in enumerate(dense):
        h = h @ p["w"] + p["b"]
        if i < len(dense) - 1:
            h = jax.nn.relu(h)
    logp = jax.nn.log_softmax(h, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=-1))


def loss_and_grad_fn(model, backprop: str = "manual") -> Callable:
    """``(params, x, y) -> (loss, grads)`` of ``model`` with cross-entropy."""

    def fn(p, x, y):
        return jaxbp.loss_and_grad(
            model, p, x, y, loss="cross_entropy", backprop=backprop
        )

    return fn


def gradient_functions(model) -> dict[str, Callable]:
    """The contenders, as functions of (params, x, y) (not yet jitted): the
    manual and autodiff gradients, the plain-JAX reference under
    ``jax.value_and_grad``, and the forward pass alone."""

    def reference(p, x, y):
        return jax.value_and_grad(reference_loss)(p, x, y)

    def forward(p, x, y):
        return jaxbp.loss(model, p, x, y, loss="cross_entropy")

    return {
        "manual": loss_and_grad_fn(model, "manual"),
        "autodiff": loss_and_grad_fn(model, "autodiff"),
        "reference": reference,
        "forward": forward,
    }


def sgd_step(model, learning_rate: float = 1e-3) -> Callable:
    """A training step: the manual gradient and a plain SGD update."""

    def step(params, x, y):
        value, grads = jaxbp.loss_and_grad(model, params, x, y)
        new = jax.tree.map(lambda p, g: p - learning_rate * g, params, grads)
        return new, value

    return step


def matmul_problem(n: int):
    """``(jitted matmul, a, b, flops)``: square float32 ``a @ b`` of size ``n``."""
    ka, kb = jax.random.split(jax.random.key(n))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    return jax.jit(jnp.matmul), a, b, 2 * n**3


def max_difference(a, b) -> float:
    """The largest absolute difference between two pytrees' leaves."""
    return max(
        float(jnp.max(jnp.abs(u - v)))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )
