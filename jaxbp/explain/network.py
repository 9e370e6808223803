"""The default network (the post's worked example) and the weights file format.

A weights file is a JSON object with these fields::

    {
      "sizes": [2, 2, 2],                 units per layer, the inputs first
      "activation": "sigmoid",            one name for every layer, or a list
                                          with one per layer ("identity": none)
      "loss": "mse",                      any jaxbp loss
      "weights": [[[0.15, 0.25],          per layer its W, shape (n_in, n_out):
                   [0.20, 0.30]],         weights[l][j][k] goes from unit j of
                  [[0.40, 0.50],          layer l to unit k of layer l + 1
                   [0.45, 0.55]]],        (net = x W + b)
      "biases": [0.35, 0.60],             per layer one number (shared by its
                                          units, as in the post) or a list
      "inputs": [0.05, 0.10],             one example, or a list of examples
      "targets": [0.01, 0.99]             one per example
    }

``activation`` (default ``sigmoid``) and ``loss`` (default ``mse``) may be
left out. That is :data:`MAZUR`, the network of Matt Mazur's "A Step by Step
Backpropagation Example" (2015): w1 … w8 = 0.15 … 0.55 (w1: i1→h1, w2: i2→h1,
w3: i1→h2, w4: i2→h2, w5: h1→o1, w6: h2→o1, w7: h1→o2, w8: h2→o2). Anything
that does not fit raises :class:`NetworkError` naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp import activations, losses
from jaxbp.checks import is_finite_number, is_int
from jaxbp.layers import activation as activation_layer
from jaxbp.layers import dense
from jaxbp.model import Model, sequential

FIELDS = ("sizes", "activation", "loss", "weights", "biases", "inputs", "targets")
DEFAULTS = {"activation": "sigmoid", "loss": "mse"}

MAZUR: dict[str, Any] = {
    "sizes": [2, 2, 2],
    "activation": "sigmoid",
    "loss": "mse",
    "weights": [[[0.15, 0.25], [0.20, 0.30]], [[0.40, 0.50], [0.45, 0.55]]],
    "biases": [0.35, 0.60],
    "inputs": [0.05, 0.10],
    "targets": [0.01, 0.99],
}


class NetworkError(ValueError):
    """A network description that does not fit; ``field`` names the culprit
    (None for a file that cannot be read or is not JSON)."""

    def __init__(self, field: str | None, message: str):
        super().__init__(message)
        self.field = field


class Network(NamedTuple):
    """A small MLP with its data: ``weights[l]`` (n_in, n_out), ``biases[l]``
    (n_out,), ``activations[l]`` after layer l, ``inputs`` (B, sizes[0]),
    ``targets`` (B, sizes[-1])."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    inputs: np.ndarray
    targets: np.ndarray


def read_network(path) -> dict:
    """The JSON object in the file at ``path`` (not yet checked: see
    :func:`parse_network`)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise NetworkError(None, f"cannot read the file: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise NetworkError(None, f"not valid JSON: {error}") from None


def parse_network(data: Mapping) -> Network:
    """The network a weights-file object describes; :class:`NetworkError` naming
    the field when it does not fit."""
    if not isinstance(data, Mapping):
        raise NetworkError(
            None, f"expected a JSON object with the fields {', '.join(FIELDS)}"
        )
    _check_fields(data)
    data = {**DEFAULTS, **data}
    sizes = _sizes(data["sizes"])
    layers = len(sizes) - 1
    inputs = _examples(data["inputs"], sizes[0], "inputs")
    targets = _examples(data["targets"], sizes[-1], "targets")
    if len(targets) != len(inputs):
        raise NetworkError(
            "targets",
            f"targets: expected one per example of inputs ({len(inputs)}); "
            f"got {len(targets)}",
        )
    network = Network(
        sizes=sizes,
        activations=_activations(data["activation"], layers),
        loss=_loss(data["loss"]),
        weights=_weights(data["weights"], sizes),
        biases=_biases(data["biases"], sizes),
        inputs=inputs,
        targets=targets,
    )
    _check_targets_fit_loss(network)
    return network


def network_dict(network: Network) -> dict[str, Any]:
    """The weights-file object of ``network`` (``parse_network`` gives it back)."""
    return {
        "sizes": list(network.sizes),
        "activation": list(network.activations),
        "loss": network.loss,
        "weights": [w.tolist() for w in network.weights],
        "biases": [b.tolist() for b in network.biases],
        "inputs": network.inputs.tolist(),
        "targets": network.targets.tolist(),
    }


def build(network: Network) -> tuple[Model, tuple]:
    """(model, params): dense layers, each followed by its activation (none for
    ``identity``), with dtype float64; the params are NumPy float64 arrays, so
    that nothing is rounded to float32 when x64 is off."""
    layers, params = [], []
    for size, name, w, b in zip(
        network.sizes[1:], network.activations, network.weights, network.biases
    ):
        layers.append(dense(size))
        params.append({"w": w, "b": b})
        if name != "identity":
            layers.append(activation_layer(name))
            params.append(())
    model = sequential(*layers, in_shape=network.sizes[:1], dtype=jnp.float64)
    return model, tuple(params)


# ---------------------------------------------------------------- the fields


def _check_fields(data: Mapping) -> None:
    for name in data:
        if name not in FIELDS:
            raise NetworkError(
                str(name),
                f"unknown field {name!r}; the fields are {', '.join(FIELDS)}",
            )
    for name in FIELDS:
        if name not in data and name not in DEFAULTS:
            raise NetworkError(name, f"missing field {name!r}")


def _sizes(value) -> tuple[int, ...]:
    if not (
        isinstance(value, list)
        and len(value) >= 2
        and all(is_int(s) and s > 0 for s in value)
    ):
        raise NetworkError(
            "sizes",
            "sizes: expected a list of at least 2 positive integers (units per "
            f"layer, the inputs first); got {_show(value)}",
        )
    return tuple(value)


def _activations(value, layers: int) -> tuple[str, ...]:
    names = [value] * layers if isinstance(value, str) else value
    if not (isinstance(names, list) and len(names) == layers):
        raise NetworkError(
            "activation",
            f"activation: expected a name or a list of {layers} names (one per "
            f"layer); got {_show(value)}",
        )
    for name in names:
        if not isinstance(name, str) or name not in activations.ACTIVATIONS:
            raise NetworkError(
                "activation",
                f"activation: unknown activation {_show(name)}; expected one of: "
                f"{', '.join(activations.ACTIVATIONS)}",
            )
    return tuple(names)


def _loss(value) -> str:
    if not isinstance(value, str) or value not in losses.LOSSES:
        raise NetworkError(
            "loss",
            f"loss: unknown loss {_show(value)}; expected one of: "
            f"{', '.join(losses.LOSSES)}",
        )
    return value


def _weights(value, sizes) -> tuple[np.ndarray, ...]:
    _list_of(value, len(sizes) - 1, "weights", "matrices (one per layer)", "weights")
    return tuple(
        _array(w, (n_in, n_out), f"weights[{i}]", "weights")
        for i, (w, n_in, n_out) in enumerate(zip(value, sizes[:-1], sizes[1:]))
    )


def _biases(value, sizes) -> tuple[np.ndarray, ...]:
    _list_of(value, len(sizes) - 1, "biases", "entries (one per layer)", "biases")
    return tuple(
        np.full(n, float(b))
        if is_finite_number(b)
        else _array(b, (n,), f"biases[{i}]", "biases")
        for i, (b, n) in enumerate(zip(value, sizes[1:]))
    )


def _examples(value, width: int, field: str) -> np.ndarray:
    """One example (a list of ``width`` numbers) or a list of them, as (B, width)."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return _array(value, (len(value), width), field, field)
    return _array(value, (width,), field, field)[None, :]


def _array(value, shape, where: str, field: str) -> np.ndarray:
    """``value`` as a float64 array of ``shape``: nested lists of finite numbers."""
    if not shape:
        if not is_finite_number(value):
            raise NetworkError(
                field, f"{where}: expected a finite number; got {_show(value)}"
            )
        return np.float64(value)
    what = "numbers" if len(shape) == 1 else f"lists (shape {shape})"
    _list_of(value, shape[0], where, what, field)
    items = [_array(v, shape[1:], f"{where}[{i}]", field) for i, v in enumerate(value)]
    return np.asarray(items, dtype=np.float64)


def _list_of(value, length: int, where: str, what: str, field: str) -> None:
    if not isinstance(value, list) or len(value) != length:
        raise NetworkError(
            field, f"{where}: expected a list of {length} {what}; got {_show(value)}"
        )


def _check_targets_fit_loss(network: Network) -> None:
    out = jax.ShapeDtypeStruct(network.targets.shape, jnp.float64)
    try:
        with jax.enable_x64(True):
            losses.get(network.loss).prepare(out, network.targets)
    except ValueError as error:
        raise NetworkError(
            "targets", f"targets do not fit the loss {network.loss!r}: {error}"
        ) from None


def _show(value) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = json.dumps(value) if _is_json(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_json(value) -> bool:
    return value is None or isinstance(value, str | bool | int | float)
