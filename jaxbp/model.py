"""Models: a sequence of layers with the input shape fixed; ``mlp`` and ``cnn``.

A :class:`Model` is a thin, hashable wrapper around ``serial(*layers)``: it
knows its input shape and dtype, creates parameters and state, checks inputs,
and exposes the forward pass (which keeps caches) and the backward pass
(which threads ``dy`` back through the caches, output to input).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxbp import activations, initializers, model_init
from jaxbp import layers as layers_lib
from jaxbp.checks import check_int
from jaxbp.compilation import host_array, to_device
from jaxbp.layers import Layer, dense, serial_backward, serial_forward
from jaxbp.layers import activation as activation_layer


@dataclasses.dataclass(frozen=True)
class Model:
    """A sequential model: ``layers`` applied in order to inputs of ``in_shape``.

    ``params`` and ``state`` are tuples with one entry per layer.
    """

    layers: tuple[Layer, ...]
    in_shape: tuple[int, ...]
    dtype: Any = jnp.float32

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "in_shape", tuple(self.in_shape))
        object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
        if not self.layers:
            raise ValueError("a model needs at least one layer; got none")

    def __repr__(self) -> str:
        """A table of the layers (name, output shape, parameter count) and the
        total, instead of the layers' function addresses."""
        return _table(self)

    # ------------------------------------------------------------- creation

    def init_with_state(self, key) -> tuple[Any, Any]:
        """(params, state): parameters drawn with ``key``, and the initial state.

        Compiled, not run op by op (which would compile every op separately),
        as the two programs of ``jaxbp.draws.two_stage`` (random bits, then
        the weights): bit for bit the one-program :func:`reference_init`, in
        a fraction of its compile time. Inside a trace (``jit``, ``vmap``) it
        is traced as one function. A 64-bit dtype needs JAX's x64 mode on
        (else a ValueError says how).
        """
        _check_dtype_available(self.dtype)
        return model_init.two_programs(self, key)

    def init(self, key):
        """The parameters, a pytree of arrays (a tuple with one entry per layer)."""
        return self.init_with_state(key)[0]

    def init_state(self):
        """The initial state (e.g. batch norm's running averages; ``()`` entries
        for stateless layers). It does not depend on the key."""
        _check_dtype_available(self.dtype)
        return model_init.initial_state(self)

    @functools.cached_property
    def out_shape(self) -> tuple[int, ...]:
        """The per-example output shape."""
        shape = self.in_shape
        for layer in self.layers:
            shape = _out_shape(layer, shape, self.dtype)
        return shape

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    # ------------------------------------------------------------- passes

    def check_input(self, x) -> jax.Array:
        """``x`` as an array of the model's dtype, after checking its shape;
        integer tokens for a model whose first layer is an embedding stay
        integers."""
        _check_dtype_available(self.dtype)
        host = host_array(x)  # host data is cast by NumPy, then transferred
        x = jnp.asarray(x) if host is None else host
        if x.ndim != len(self.in_shape) + 1 or x.shape[1:] != self.in_shape:
            expected = ", ".join(["batch", *map(str, self.in_shape)])
            raise ValueError(
                f"model expects inputs of shape ({expected}); got shape {x.shape}"
            )
        if self.takes_tokens:
            if not jnp.issubdtype(x.dtype, jnp.integer):
                raise ValueError(
                    f"model starts with {self.layers[0].name}, which expects "
                    "integer tokens; "
                    f"got dtype {x.dtype}"
                )
        else:  # copied only when the dtype changes (NumPy's default copies)
            x = x.astype(self.dtype, copy=False)
        return x if host is None else to_device(x)

    @property
    def takes_tokens(self) -> bool:
        """Whether the inputs are integer tokens (the first layer takes them:
        an embedding, a GPT body)."""
        return self.layers[0].takes_tokens

    def check_params(self, params) -> None:
        """Raise ValueError unless every floating parameter has the model's
        dtype (gradients then have the dtype of their parameters, manual and
        autodiff alike)."""
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            dtype = jnp.result_type(leaf)
            if jnp.issubdtype(dtype, jnp.floating) and dtype != self.dtype:
                raise ValueError(
                    f"params{jax.tree_util.keystr(path)} has dtype {dtype} but the "
                    f"model's dtype is {self.dtype}: build the model with "
                    f"dtype={dtype} (or cast the params to {self.dtype})"
                )

    def forward(self, params, state, x, *, key=None, train=False):
        """(out, caches, new_state): the forward pass, keeping each layer's cache
        (evaluation mode by default; ``train=True`` for batch statistics and
        dropout)."""
        x = self.check_input(x)
        return serial_forward(
            params, state, x, layers=self.layers, key=key, train=train
        )

    def backward(self, params, caches, dout):
        """(grads, dx): the chain rule from dL/dout back through every layer."""
        return serial_backward(params, caches, dout, layers=self.layers)

    def apply(self, params, x, *, state=None, key=None, train=False):
        """The model's output for inputs ``x`` (evaluation mode by default)."""
        if state is None:
            state = self.init_state()
        out, _, _ = self.forward(params, state, x, key=key, train=train)
        return out


def reference_init(model: Model, key):
    """``(params, state)`` as one compiled program: what
    :meth:`Model.init_with_state` computes (tested equal, bit for bit)."""
    _check_dtype_available(model.dtype)
    return model_init.one_program(model, key)


def _check_dtype_available(dtype) -> None:
    """A 64-bit dtype needs JAX's x64 mode; without it JAX would quietly
    truncate to 32 bits. Checked where arrays are made (init, inputs), not
    when the model is built: a float64 model may be described with x64 off
    and used inside ``jax.enable_x64(True)`` (as ``jaxbp.explain`` does)."""
    if jax.dtypes.canonicalize_dtype(dtype) != dtype:
        raise ValueError(
            f"dtype {dtype} needs 64-bit JAX, which is off: run "
            "jax.config.update('jax_enable_x64', True) (or set JAX_ENABLE_X64=1) "
            "before using the model"
        )


def _layer_shapes(layer, in_shape, dtype):
    """``(output shape, params as ShapeDtypeStructs)`` of a layer, from its
    init traced abstractly (no arrays made)."""
    shapes = []

    def init_shape(key):
        out_shape, params, state = layer.init(key, in_shape, dtype)
        shapes.append(out_shape)
        return params, state

    params, _ = jax.eval_shape(lambda: init_shape(jax.random.key(0)))
    return tuple(shapes[0]), params


def _out_shape(layer, in_shape, dtype):
    """A layer's output shape, from its init traced abstractly (no arrays made)."""
    return _layer_shapes(layer, in_shape, dtype)[0]


def _table(model: Model) -> str:
    """The rows of ``repr(model)``: layer, output shape, parameter count, total."""
    rows, shape, total = (
        [("", "layer", "output shape", "parameters")],
        model.in_shape,
        0,
    )
    for i, layer in enumerate(model.layers):
        shape, params = _layer_shapes(layer, shape, model.dtype)
        count = sum(leaf.size for leaf in jax.tree.leaves(params))
        total += count
        rows.append((str(i), layer.name, str(shape), f"{count:,}"))
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = [
        f"  {i:>{widths[0]}}  {name:<{widths[1]}}  {out:<{widths[2]}}  "
        f"{count:>{widths[3]}}".rstrip()
        for i, name, out, count in rows
    ]
    head = (
        f"Model(in_shape={model.in_shape}, dtype={model.dtype}: "
        f"{len(model.layers)} layers, {total:,} parameters)"
    )
    return "\n".join([head, *lines])


def sequential(*layers: Layer, in_shape: Sequence[int], dtype=jnp.float32) -> Model:
    """A model from layers applied in order to inputs of per-example ``in_shape``."""
    return Model(tuple(layers), tuple(in_shape), dtype)


def _check_sizes(sizes) -> list[int]:
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp needs at least [inputs, outputs] sizes; got {sizes!r}")
    for s in sizes:
        if not (isinstance(s, int) and s > 0):
            raise ValueError(
                f"mlp layer sizes must be positive integers; got {sizes!r}"
            )
    return sizes


def _checked_init(activation, init, dropout):
    """The initializer to use (``he`` for the ReLU family, ``xavier`` otherwise,
    when ``init`` is None), after checking the activation, init and dropout rate."""
    activations.get(activation)
    init = initializers.default_for(activation) if init is None else init
    initializers.get(init)
    if dropout:
        layers_lib.dropout(dropout)  # validates the rate
    return init


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    init: str | initializers.Initializer | None = None,
    *,
    dtype=jnp.float32,
    batchnorm: bool = False,
    dropout: float = 0.0,
    residual: bool = False,
    input_dropout: float = 0.0,
) -> Model:
    """A multilayer perceptron: dense layers of ``sizes`` with ``activation`` between.

    ``mlp([64, 128, 10])`` is ``dense(128) → activation → dense(10)``; the last
    layer is linear (its outputs are the logits / predictions the loss takes).
    ``init`` defaults to ``he`` for the ReLU family and ``xavier`` otherwise.

    Each hidden block is ``dense → [batchnorm] → activation → [dropout]``:
    ``batchnorm=True`` normalizes every hidden pre-activation; ``dropout > 0``
    drops hidden units with that probability in training mode (pass a PRNG
    ``key``); ``residual=True`` wraps every hidden block whose input and output
    widths agree in ``residual(...)`` (y = x + block(x)); ``input_dropout > 0``
    drops input features with that probability in training mode (noise on the
    inputs, a regularizer for small data sets).
    """
    sizes = _check_sizes(sizes)
    init = _checked_init(activation, init, dropout)
    layers: list[Layer] = []
    if input_dropout:
        layers.append(layers_lib.dropout(input_dropout))
    for i, width in enumerate(sizes[1:-1]):
        block = _hidden_block(width, activation, init, batchnorm, dropout)
        if residual and sizes[i] == width:
            layers.append(layers_lib.residual(*block))
        else:
            layers.extend(block)
    layers.append(dense(sizes[-1], init=init))
    return Model(tuple(layers), (sizes[0],), dtype)


def _hidden_block(width, activation, init, batchnorm, dropout) -> list[Layer]:
    """dense → [batchnorm] → activation → [dropout] (no dense bias before
    batch norm: its β does that job)"""
    block = [dense(width, init=init, use_bias=not batchnorm)]
    if batchnorm:
        block.append(layers_lib.batchnorm())
    block.append(activation_layer(activation))
    if dropout:
        block.append(layers_lib.dropout(dropout))
    return block


def cnn(
    in_shape: Sequence[int] = (8, 8, 1),
    num_classes: int = 10,
    *,
    channels: Sequence[int] = (32, 64),
    kernel_size: int = 3,
    pool: int = 2,
    hidden: int = 128,
    activation: str = "relu",
    init: str | initializers.Initializer | None = None,
    batchnorm: bool = True,
    dropout: float = 0.5,
    translate: int = 0,
    dtype=jnp.float32,
) -> Model:
    """A small convolutional net for small images (default: 8x8x1 digits)::

        [random_translate(translate)]
        [conv kxk, c (SAME) → [batchnorm] → activation] for c in channels
        (no conv bias before batch norm: its β does that job)
        → max_pool(pool) → flatten → dense(hidden) → activation → [dropout]
        → dense(num_classes)

    The default is conv 3x3x32 → batchnorm → relu → conv 3x3x64 → batchnorm →
    relu → max-pool 2 → flatten (4·4·64) → dense 128 → relu → dropout 0.5 →
    dense 10, the outputs logits for ``cross_entropy``. ``jaxbp train --model
    cnn`` trains it on the digits with AdamW and cosine decay; its accuracy,
    time and how the recipe was chosen (cross-validation on the training and
    validation images, ``experiments/cnn_selection.py``) are in the README,
    "Targets". Being a model with batch norm and dropout, it trains with
    ``state`` and a PRNG ``key`` threaded through and is evaluated with
    ``train=False`` and the trained ``state``. ``pool=1`` leaves out the
    pooling, ``hidden=0`` the hidden dense layer.

    ``translate=k > 0`` puts ``random_translate(k)`` first: in training mode
    each image is shifted by a random offset of up to ``k`` pixels (zero fill),
    data augmentation; evaluation is unaffected. It is off by default (on the
    standardized 8x8 digits it raised the cross-validated errors: README,
    "Targets").
    """
    in_shape, channels = tuple(in_shape), list(channels)
    _check_cnn_sizes(in_shape, num_classes, channels, hidden)
    init = _checked_init(activation, init, dropout)
    layers: list[Layer] = []
    if translate:
        layers.append(layers_lib.random_translate(translate))
    for c in channels:
        layers.extend(_conv_block(c, kernel_size, init, batchnorm, activation))
    if pool != 1:
        layers.append(layers_lib.max_pool(pool))
    layers.append(layers_lib.flatten())
    if hidden:
        layers.append(dense(hidden, init=init))
        layers.append(activation_layer(activation))
        if dropout:
            layers.append(layers_lib.dropout(dropout))
    layers.append(dense(num_classes, init=init))
    return Model(tuple(layers), in_shape, dtype)


def _check_cnn_sizes(in_shape, num_classes, channels, hidden) -> None:
    if len(in_shape) != 3:
        raise ValueError(
            f"cnn expects a per-example image shape (height, width, channels); "
            f"got {in_shape}"
        )
    if not (isinstance(num_classes, int) and num_classes > 0):
        raise ValueError(
            f"cnn num_classes must be a positive integer; got {num_classes!r}"
        )
    if not channels or not all(isinstance(c, int) and c > 0 for c in channels):
        raise ValueError(f"cnn channels must be positive integers; got {channels!r}")
    if not (isinstance(hidden, int) and hidden >= 0):
        raise ValueError(f"cnn hidden must be an integer >= 0; got {hidden!r}")


def _conv_block(channels, kernel_size, init, batchnorm, activation) -> list[Layer]:
    """conv kxk (SAME) → [batchnorm] → activation (no conv bias before batch
    norm: its β does that job)"""
    conv = layers_lib.conv2d(
        channels, kernel_size, padding="SAME", init=init, use_bias=not batchnorm
    )
    norm = [layers_lib.batchnorm()] if batchnorm else []
    return [conv, *norm, activation_layer(activation)]


def gpt(
    vocab_size: int,
    *,
    block_size: int = 64,
    n_layer: int = 4,
    n_head: int = 4,
    n_embd: int = 128,
    dropout: float = 0.0,
    dtype=jnp.float32,
    remat: bool = False,
) -> Model:
    """GPT-2 (pre-norm, as nanoGPT): tokens (B, block_size) → logits (B,
    block_size, vocab_size)::

        x = dropout(wte[tokens] + wpe[:T])
        n_layer × gpt_block: x = x + attn(LN(x)); x = x + mlp(LN(x))
        logits = LN_f(x) wteᵀ                  (the head tied to wte)

    ``n_head`` heads, an MLP 4x wide with the tanh GELU, ``dropout`` on the
    embeddings, attention weights and residual branches in training mode.
    GPT-2's initialisation: weights N(0, 0.02²), the residual projections
    (``attn/w_proj``, ``mlp/w_proj``) N(0, (0.02/√(2·n_layer))²), biases 0.
    Params ``wte``, ``wpe``, ``blocks/i/{ln_1, attn, ln_2, mlp}``, ``ln_f``
    (``jaxbp.layers.gpt_body``); weight-decay mask: ``regularization.l2_mask``.
    ``remat=True``: each block's backward recomputes its forward (checkpointing).
    """
    check_int("n_layer", n_layer, 1)
    proj_init = initializers.normal(layers_lib.GPT2_STD / (2 * n_layer) ** 0.5)
    blocks = [
        layers_lib.gpt_block(n_head, dropout=dropout, proj_init=proj_init, remat=remat)
        for _ in range(n_layer)
    ]
    body = layers_lib.gpt_body(vocab_size, block_size, n_embd, blocks, dropout=dropout)
    model = Model((body,), (block_size,), dtype)
    _ = model.out_shape  # checks the sizes now (n_head must divide n_embd)
    return model
