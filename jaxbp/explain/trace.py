"""The structured trace of one training step, recorded from the model's own layers.

:func:`explain_step` runs ``jaxbp.forward_backward`` (what ``loss_and_grad``
runs) on a copy of the model whose layers are wrapped to record what each
``Layer.forward`` and ``Layer.backward`` is given and returns. No number of the
trace is computed a second way: the forward quantities, the loss, every
upstream gradient, δ, ∂E/∂W and ∂E/∂b are those values. Two more numbers come
from the layers' own backward functions:

- the local derivative ∂out/∂net = f'(net) is the activation layer's backward
  of dy = 1 (``dz = dy · f'(z)``);
- the part of ∂E/∂x[j] that flows through unit k (δ_k · W[j, k], a term of the
  post's ∂E_total/∂out_h1 = ∂E_o1/∂out_h1 + ∂E_o2/∂out_h1) is the dense layer's
  backward of δ with every unit but k masked out.

The update is ``jaxbp.optim.sgd`` (biases frozen unless ``update_biases``), and
the whole step runs in float64.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import activations, backprop, losses
from jaxbp.explain.update import check_learning_rate, optimizer, sgd_step
from jaxbp.layers import Layer
from jaxbp.model import Model, sequential


class LayerTrace(NamedTuple):
    """One dense layer and the activation after it, in one step (batch axis first).

    Forward: ``net = x W + b``, ``out = f(net)`` (``out = net`` when no
    activation follows: ``activation`` and ``local`` are None).
    Backward: ``d_out = ∂E/∂out`` (the upstream gradient), ``local = ∂out/∂net
    = f'(net)``, ``delta = δ = ∂E/∂net = d_out ⊙ local``, ``d_w = ∂E/∂W = xᵀ δ``,
    ``d_b = ∂E/∂b = Σ_batch δ``, ``d_x = ∂E/∂x = δ Wᵀ`` (the previous layer's
    ``d_out``) and ``d_x_terms[n, j, k] = δ[n, k] W[j, k]``, its terms.
    Update: ``w_new``, ``b_new``. A layer without bias has None for ``b``,
    ``d_b`` and ``b_new``.
    """

    layer: int
    activation: str | None
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    net: np.ndarray
    out: np.ndarray
    d_out: np.ndarray
    local: np.ndarray | None
    delta: np.ndarray
    d_w: np.ndarray
    d_b: np.ndarray | None
    d_x: np.ndarray
    d_x_terms: np.ndarray
    w_new: np.ndarray
    b_new: np.ndarray | None


class StepTrace(NamedTuple):
    """One training step: the layers (input to output), the loss before
    (``value``) and after (``value_after``) the update, the targets as the loss
    takes them, ``loss_terms`` (mse only: each output's share of E), and
    ``grads`` / ``new_params`` with the structure of the model's params."""

    layers: tuple[LayerTrace, ...]
    loss: str
    x: np.ndarray
    target: np.ndarray
    value: float
    loss_terms: np.ndarray | None
    learning_rate: float
    update_biases: bool
    value_after: float
    grads: Any
    new_params: Any

    @property
    def sizes(self) -> tuple[int, ...]:
        """Units per layer, the input layer first."""
        return (self.layers[0].w.shape[0], *(t.w.shape[1] for t in self.layers))


def explain_step(
    model: Model,
    params,
    x,
    y,
    *,
    loss: str = "mse",
    learning_rate: float = 0.5,
    update_biases: bool = False,
) -> StepTrace:
    """The trace of one gradient-descent step of ``model`` on ``(x, y)``, in float64.

    ``model`` is made of dense layers, each followed by at most one activation
    layer (as ``jaxbp.mlp`` or ``jaxbp.sequential`` build); it runs in float64
    whatever its dtype (``params`` are converted). ``loss`` is any jaxbp loss:
    ``mse`` with one example is the post's E = Σ ½(target − out)². The gradients
    are exactly ``jaxbp.loss_and_grad``'s for the float64 model.
    """
    learning_rate = check_learning_rate(learning_rate)
    groups = dense_groups(model, params)
    with jax.enable_x64(True):
        model, params = as_float64(model, params)
        records = [{} for _ in model.layers]
        recording = sequential(
            *map(_recording, model.layers, records),
            in_shape=model.in_shape,
            dtype=model.dtype,
        )
        result = backprop.forward_backward(recording, params, x, y, loss=loss)
        x, target, _, _ = backprop.prepare(model, params, x, y, loss, None)
        tx = optimizer(params, learning_rate, update_biases=update_biases)
        new_params = sgd_step(tx, params, result.grads)
        value_after = backprop.loss(model, new_params, x, y, loss=loss)
        layers = tuple(
            _layer_trace(i + 1, model.layers, params, new_params, records, group)
            for i, group in enumerate(groups)
        )
        return StepTrace(
            layers=layers,
            loss=loss,
            x=np.asarray(x),
            target=np.asarray(target),
            value=float(result.value),
            loss_terms=_loss_terms(loss, result.output, target),
            learning_rate=learning_rate,
            update_biases=bool(update_biases),
            value_after=float(value_after),
            grads=jax.tree.map(np.asarray, result.grads),
            new_params=jax.tree.map(np.asarray, new_params),
        )


def dense_groups(model: Model, params) -> list[tuple[int, int | None]]:
    """(dense layer index, index of the activation after it or None) for each
    dense layer; a ValueError for any other kind of layer."""
    if not isinstance(model, Model):
        raise TypeError(f"expected a jaxbp Model; got {type(model).__name__}")
    if len(model.in_shape) != 1:
        raise ValueError(
            f"explain_step takes models of flat inputs (features,); "
            f"got in_shape {model.in_shape}"
        )
    groups: list[list] = []
    for i, (layer, p) in enumerate(zip(model.layers, params, strict=True)):
        if isinstance(p, dict) and "w" in p and set(p) <= {"w", "b"}:
            groups.append([i, None])
        elif _is_activation(layer, p) and groups and groups[-1][1] is None:
            groups[-1][1] = i
        else:
            raise ValueError(
                "explain_step takes models of dense layers, each followed by at "
                f"most one activation layer (as jaxbp.mlp builds); layer {i} "
                f"({layer.name!r}) is not one of them"
            )
    return [tuple(group) for group in groups]


def _is_activation(layer: Layer, params) -> bool:
    return layer.name in activations.ACTIVATIONS and params == ()


def as_float64(model: Model, params):
    """The model with dtype float64 and its params as float64 arrays (call with
    x64 enabled)."""
    model = sequential(*model.layers, in_shape=model.in_shape, dtype=jnp.float64)
    return model, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)


def _recording(layer: Layer, record: dict) -> Layer:
    """``layer``, also writing its inputs and outputs into ``record``."""

    def forward(params, state, x, *, key=None, train=False):
        y, cache, new_state = layer.forward(params, state, x, key=key, train=train)
        record.update(x=x, y=y, cache=cache)
        return y, cache, new_state

    def backward(params, cache, dy):
        dparams, dx = layer.backward(params, cache, dy)
        record.update(dy=dy, dparams=dparams, dx=dx)
        return dparams, dx

    return Layer(layer.name, layer.init, forward, backward)


def _layer_trace(number, layers, params, new_params, records, group) -> LayerTrace:
    dense_at, activation_at = group
    dense, top = records[dense_at], records[dense_at]
    local, activation = None, None
    if activation_at is not None:
        top, activation = records[activation_at], layers[activation_at].name
        ones = jnp.ones_like(top["dy"])
        _, local = layers[activation_at].backward(
            params[activation_at], top["cache"], ones
        )
    p, p_new = params[dense_at], new_params[dense_at]
    terms = _input_terms(layers[dense_at], p, dense["cache"], dense["dy"])
    return LayerTrace(
        layer=number,
        activation=activation,
        x=_numpy(dense["x"]),
        w=_numpy(p["w"]),
        b=_numpy(p.get("b")),
        net=_numpy(dense["y"]),
        out=_numpy(top["y"]),
        d_out=_numpy(top["dy"]),
        local=_numpy(local),
        delta=_numpy(dense["dy"]),
        d_w=_numpy(dense["dparams"]["w"]),
        d_b=_numpy(dense["dparams"].get("b")),
        d_x=_numpy(dense["dx"]),
        d_x_terms=_numpy(terms),
        w_new=_numpy(p_new["w"]),
        b_new=_numpy(p_new.get("b")),
    )


def _input_terms(layer: Layer, params, cache, delta):
    """terms[n, j, k]: the part of ∂E/∂x[n, j] through unit k, the layer's own
    backward of δ with every unit but k set to 0."""
    masks = jnp.eye(delta.shape[1], dtype=delta.dtype)[:, None, :]
    dx = jax.vmap(lambda dy: layer.backward(params, cache, dy)[1])(masks * delta)
    return jnp.transpose(dx, (1, 2, 0))


def _loss_terms(loss: str, out, target) -> np.ndarray | None:
    """mse only: each output's ½ · mean_n (out − target)², by the loss itself."""
    if loss != "mse":
        return None
    value = losses.get("mse").value
    columns = range(out.shape[1])
    return np.array([float(value(out[:, [k]], target[:, [k]])) for k in columns])


def _numpy(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value)
