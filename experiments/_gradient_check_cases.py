"""The cases of ``gradient_check.py``: one small model per layer, activation,
loss and textbook backward form, each with the layer's backward pass on the
path of some parameter's gradient.

A case is ``(name, group, layers, per-example input shape, loss, mode)``;
``mode`` may ask for training mode (``train``), a fixed PRNG key (``key``),
batch-norm running statistics from another batch (``bn_state``) or integer
token inputs in ``[0, vocab)`` (``tokens``: vocab) instead of floats.
Below them, the drawing of each case's problem: targets, inputs, and values
for its parameters and state, all with numpy (no compilation).
"""

from __future__ import annotations

import jax
import numpy as np

from jaxbp import activations
from jaxbp import layers as L


def _mlp_around(layer, width=5, out=3, act="tanh"):
    """dense(width) → layer → [activation] → dense(out): the layer's backward pass
    lies between two parameterized layers, so its dx reaches the first one."""
    body = [L.dense(width), layer]
    if act:
        body.append(L.activation(act))
    return [*body, L.dense(out)]


def _composite_cases():
    """Layers made of layers: serial and checkpointed (fenced backward)."""
    return [
        (
            "serial",
            "layer",
            [
                L.dense(5),
                L.serial(L.dense(5), L.activation("tanh"), L.dense(4)),
                L.dense(3),
            ],
            (4,),
            "cross_entropy",
            {},
        ),
        (
            "checkpointed",
            "layer",
            [
                L.dense(5),
                L.checkpointed(L.dense(5), L.activation("tanh"), L.dense(4)),
                L.activation("sigmoid"),
                L.dense(3),
            ],
            (4,),
            "cross_entropy",
            {},
        ),
        (
            "checkpointed (dropout, fixed key)",
            "layer",
            [
                L.dense(5),
                L.checkpointed(L.dense(8), L.activation("tanh"), L.dropout(0.5)),
                L.dense(3),
            ],
            (4,),
            "cross_entropy",
            {"train": True, "key": True},
        ),
    ]


def _textbook_cases():
    """The textbook forms of the backward passes that have a fast one."""
    conv_in = (7, 7, 2)
    cases = [
        (
            f"conv2d {pad} s{stride} (textbook)",
            "textbook form",
            [
                L.conv2d(3, 3, stride, pad, textbook=True),
                L.activation("tanh"),
                L.conv2d(2, 3, stride, pad, textbook=True),
                L.flatten(),
                L.dense(3),
            ],
            conv_in,
            "cross_entropy",
            {},
        )
        for pad, stride in (("SAME", 2), ("VALID", 1))
    ]
    cases.append(
        (
            "checkpointed (textbook)",
            "textbook form",
            [
                L.dense(5),
                L.checkpointed(
                    L.dense(8), L.activation("tanh"), L.dropout(0.5), textbook=True
                ),
                L.dense(3),
            ],
            (4,),
            "cross_entropy",
            {"train": True, "key": True},
        )
    )
    return cases


#: The activations that came first, in their order: their cases keep their
#: places (and seeds); activations added later are checked at the end.
FIRST_ACTIVATIONS = (
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "softplus",
    "gelu",
    "silu",
)


def _activation_case(act):
    return (
        act,
        "activation",
        _mlp_around(L.activation(act), act=None),
        (4,),
        "mse",
        {},
    )


def _dense_and_activation_cases():
    cases = [("dense", "layer", [L.dense(4)], (5,), "mse", {})]
    for act in FIRST_ACTIVATIONS:
        cases.append(_activation_case(act))
    return cases


def _normalization_and_noise_cases():
    """Batch norm (both modes), layer norm, dropout, residual blocks."""
    ce = "cross_entropy"
    residual = [
        L.dense(5),
        L.residual(L.dense(5), L.activation("tanh")),
        L.residual(L.dense(5), L.activation("sigmoid"), L.dense(5)),
        L.dense(3),
    ]
    return [
        ("batchnorm (train)", "layer", _mlp_around(L.batchnorm()), (4,), ce, {}),
        (
            "batchnorm (eval)",
            "layer",
            _mlp_around(L.batchnorm(momentum=0.0)),
            (4,),
            ce,
            {"train": False, "bn_state": True},
        ),
        ("layernorm", "layer", _mlp_around(L.layernorm()), (4,), ce, {}),
        (
            "dropout (fixed key)",
            "layer",
            _mlp_around(L.dropout(0.5), width=8),
            (4,),
            ce,
            {"train": True, "key": True},
        ),
        ("residual", "layer", residual, (4,), ce, {}),
    ]


def _conv_cases():
    """conv2d SAME/VALID, stride 1 and 2 (odd input: SAME with stride 2 pads
    asymmetrically)."""
    return [
        (
            f"conv2d {pad} s{stride}",
            "layer",
            [
                L.conv2d(3, 3, stride, pad),
                L.activation("tanh"),
                L.conv2d(2, 3, stride, pad),
                L.flatten(),
                L.dense(3),
            ],
            (7, 7, 2),
            "cross_entropy",
            {},
        )
        for pad in ("SAME", "VALID")
        for stride in (1, 2)
    ]


def _image_cases():
    """Pooling (plain and overlapping SAME windows), random translation, flatten."""
    conv = L.conv2d(3, 3, 1, "SAME")
    pools = [
        ("max_pool 2x2", L.max_pool(2), (6, 6, 2)),
        ("max_pool 3x3/2 SAME", L.max_pool(3, 2, "SAME"), (7, 7, 2)),
        ("avg_pool 2x2", L.avg_pool(2), (6, 6, 2)),
        ("avg_pool 3x3/2 SAME", L.avg_pool(3, 2, "SAME"), (7, 7, 2)),
    ]
    cases = [
        (
            name,
            "layer",
            [conv, pool, L.flatten(), L.dense(3)],
            shape,
            "cross_entropy",
            {},
        )
        for name, pool, shape in pools
    ]
    translate = [
        conv,
        L.random_translate(1),
        L.activation("tanh"),
        L.flatten(),
        L.dense(3),
    ]
    flat = [L.conv2d(2, 2, 1, "VALID"), L.flatten(), L.dense(3)]
    return cases + [
        (
            "random_translate (fixed key)",
            "layer",
            translate,
            (6, 6, 2),
            "cross_entropy",
            {"train": True, "key": True},
        ),
        ("flatten", "layer", flat, (3, 3, 2), "cross_entropy", {}),
    ]


def _sequence_and_softmax_cases():
    stacked = [
        L.rnn(4, return_sequences=True),
        L.rnn(3, return_sequences=True),
        L.flatten(),
        L.dense(3),
    ]
    softmax = [L.dense(5), L.activation("tanh"), L.dense(4), L.softmax()]
    return [
        (
            "rnn (last state)",
            "layer",
            [L.rnn(5), L.dense(3)],
            (6, 3),
            "cross_entropy",
            {},
        ),
        ("rnn (all states)", "layer", stacked, (5, 2), "cross_entropy", {}),
        ("softmax", "layer", softmax, (4,), "mse", {}),
    ]


def _gated_recurrent_cases():
    """LSTM and GRU on float sequences (last state; all states, stacked so the
    second layer's dx reaches the first) and in a token model: embedding →
    recurrent → dense over the vocabulary, cross-entropy at every position
    (vocabulary 7 over 6 × 6 tokens: repeated tokens accumulate in the table)."""
    vocab, ce = 7, "cross_entropy"
    cases = []
    for kind, layer in (("lstm", L.lstm), ("gru", L.gru)):
        stacked = [layer(4), layer(3), L.flatten(), L.dense(3)]
        token_model = [L.embedding(vocab, 4), layer(5), L.dense(vocab)]
        cases += [
            (
                f"{kind} (last state)",
                "layer",
                [layer(5, False), L.dense(3)],
                (6, 3),
                ce,
                {},
            ),
            (f"{kind} (all states)", "layer", stacked, (5, 2), ce, {}),
            (
                f"embedding → {kind} → dense (tokens)",
                "layer",
                token_model,
                (6,),
                ce,
                {"tokens": vocab},
            ),
        ]
    embed_only = [L.embedding(vocab, 4), L.activation("tanh"), L.dense(vocab)]
    cases.append(
        ("embedding (tokens)", "layer", embed_only, (6,), ce, {"tokens": vocab})
    )
    return cases


def _transformer_cases():
    """Activations added after the first nine (the tanh GELU); causal
    self-attention on float sequences between two dense layers (cross-entropy
    at every position), fast, textbook and with dropout on its weights; the
    position embedding; GPTs on tokens (vocabulary 7, length 5, width 8, two
    heads): two blocks, and one block with dropout everywhere."""
    vocab, steps, ce = 7, 5, "cross_entropy"
    later = [a for a in activations.ACTIVATIONS if a not in FIRST_ACTIVATIONS]
    cases = [_activation_case(act) for act in later]

    def around(layer):
        return [L.dense(6), layer, L.activation("tanh"), L.dense(3)]

    attention = [
        ("causal_self_attention", "layer", L.causal_self_attention(2), {}),
        (
            "causal_self_attention (textbook)",
            "textbook form",
            L.causal_self_attention(2, textbook=True),
            {},
        ),
        (
            "causal_self_attention (dropout, fixed key)",
            "layer",
            L.causal_self_attention(2, 0.3),
            {"train": True, "key": True},
        ),
        ("position_embedding", "layer", L.position_embedding(steps), {}),
    ]
    cases += [
        (name, group, around(layer), (steps, 4), ce, mode)
        for name, group, layer, mode in attention
    ]
    two_blocks = L.gpt_body(vocab, steps, 8, [L.gpt_block(2), L.gpt_block(2)])
    dropout = L.gpt_body(vocab, steps, 8, [L.gpt_block(2, dropout=0.2)], dropout=0.2)
    tokens = {"tokens": vocab}
    return cases + [
        ("gpt (2 blocks, tokens)", "layer", [two_blocks], (steps,), ce, tokens),
        (
            "gpt (dropout, fixed key, tokens)",
            "layer",
            [dropout],
            (steps,),
            ce,
            {**tokens, "train": True, "key": True},
        ),
    ]


def _loss_cases():
    cases = []
    for loss, out in (
        ("mse", 3),
        ("cross_entropy", 3),
        ("binary_cross_entropy", 1),
        ("hinge", 1),
        ("hinge", 3),
    ):
        label = loss + (" (1 output)" if loss == "hinge" and out == 1 else "")
        label += " (multiclass)" if loss == "hinge" and out > 1 else ""
        layers = [L.dense(6), L.activation("tanh"), L.dense(out)]
        cases.append((label, "loss", layers, (4,), loss, {}))
    return cases


# ------------------------------------------------ problems: targets, inputs, values

BATCH = 6


def targets(rng, loss, out_shape):
    """Targets for a batch; a sequence output (T, C) gets a label per position."""
    n_out = out_shape[-1]
    if loss == "mse":
        return rng.normal(size=(BATCH, *out_shape)).astype(np.float64)
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, size=BATCH).astype(np.float64)
    if loss == "hinge" and n_out == 1:
        return rng.integers(0, 2, size=BATCH).astype(np.int32)
    return rng.integers(0, n_out, size=(BATCH, *out_shape[:-1])).astype(np.int32)


def draw_inputs(rng, shape, mode):
    """Two input batches: integer tokens below ``mode["tokens"]``, or floats
    (the second drawn off-centre, for batch-norm running statistics)."""
    if mode.get("tokens"):
        return [rng.integers(0, mode["tokens"], size=shape, dtype=np.int32)] * 2
    return rng.normal(size=shape), 1.5 * rng.normal(size=shape) + 0.5


def softmax_targets(rng, out_shape):
    p = rng.random((BATCH, *out_shape)) + 0.1
    return p / p.sum(axis=-1, keepdims=True)


def fill(tree, rng, dtype):
    """Concrete values for a parameter/state tree of ShapeDtypeStructs, drawn with
    numpy (no compilation): weights N(0, 1/fan_in), biases and shifts N(0, 0.1²),
    scales 1 + N(0, 0.1²); batch-norm running mean 0 and variance 1."""

    def leaf(path, spec):
        name = str(getattr(path[-1], "key", "")) if path else ""
        shape = spec.shape
        if name == "var":
            value = np.ones(shape)
        elif name == "mean":
            value = np.zeros(shape)
        elif name == "gamma":
            value = 1 + 0.1 * rng.normal(size=shape)
        elif len(shape) >= 2:
            value = rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))
        else:
            value = 0.1 * rng.normal(size=shape)
        return np.asarray(value, dtype)

    return jax.tree_util.tree_map_with_path(leaf, tree)


def cases():
    """(name, group, layers, per-example input shape, loss, mode) of every case."""
    return [
        *_dense_and_activation_cases(),
        *_normalization_and_noise_cases(),
        *_conv_cases(),
        *_image_cases(),
        *_sequence_and_softmax_cases(),
        *_loss_cases(),
        *_composite_cases(),
        *_textbook_cases(),
        # new cases go last: case i draws its problem from seed i, so earlier
        # cases keep theirs
        *_gated_recurrent_cases(),
        *_transformer_cases(),
    ]
