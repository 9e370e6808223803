"""Layers on the layer protocol: ``init``, ``forward`` (returns a cache) and ``backward``.

A layer is three pure functions (``_protocol`` has the details)::

    init(key, in_shape, dtype)                -> (out_shape, params, state)
    forward(params, state, x, *, key, train)  -> (y, cache, new_state)
    backward(params, cache, dy)               -> (dparams, dx)

``train`` defaults to False (evaluation mode) in every ``forward``.

Each layer's backward pass sits next to its forward pass and states its
derivative in its docstring, in the code's notation. The module-level helpers
follow one argument rule::

    NAME_backward(params, cache, dy, *, configuration)

``params`` first when the layer has parameters, then the ``cache`` its forward
pass kept when the backward needs one, then ``dy = dL/dy``; anything else (the
window geometry, the activation function, the inner layers, a shift bound) is
keyword-only after ``dy``. So ``dense_backward(params, x, dy)``,
``dropout_backward(mask, dy)``, ``avg_pool_backward(dy, geometry=...)``,
``serial_backward(params, caches, dy, layers=...)``. The forward helpers
mirror it: ``NAME_forward(params, x, *, configuration)``.

Where a fast form differs from the textbook one, both are here, tested equal:
``conv2d_backward`` (two convolutions) beside ``conv2d_backward_textbook``
(the sum over output positions of input patch ⊗ dy), and
``checkpointed_backward`` (the recomputation fenced off from XLA's CSE) beside
``checkpointed_backward_textbook`` (forward again, then backward), and
``attention_backward`` (all heads at once, the softmax's Jacobian in closed
form) beside ``attention_backward_textbook`` (head by head, each row's
Jacobian diag(p) − p pᵀ as a matrix).

- ``dense``, ``activation``: the MLP's layers.
- ``batchnorm``, ``layernorm``: normalization (batch norm keeps running
  averages in ``state``).
- ``dropout``: inverted dropout with an explicit PRNG key.
- ``random_translate``: data augmentation, random integer shifts of images in
  training mode (an explicit PRNG key, like dropout).
- ``residual``: y = x + f(x) around any layers; ``serial``: layers in sequence;
  ``checkpointed``: layers in sequence whose backward recomputes their forward
  (``jaxbp.remat`` segments whole models).
- ``conv2d``, ``max_pool``, ``avg_pool``, ``flatten``: NHWC images.
- ``rnn``: a tanh RNN with backpropagation through time; ``lstm``, ``gru``:
  torch.nn.LSTM's and torch.nn.GRU's equations, backward through time by hand.
- ``embedding``: integer tokens to rows of a table (backward: scatter-add).
- ``softmax``: softmax over the last axis.
- ``causal_self_attention``: multi-head causal self-attention (QKV
  projection, masked row softmax, weighted values, output projection);
  ``position_embedding``: a learned vector added per position;
  ``gpt_block``: the pre-norm transformer block (layer norm, attention,
  residual; layer norm, MLP with the tanh GELU, residual); ``gpt_body``:
  token and position embeddings → blocks → layer norm → the output head tied
  to the token embedding (``jaxbp.model.gpt`` builds a GPT from them).

The layers import nothing of jaxbp above them (no model, training or data).
"""

from jaxbp.layers._activation import activation, activation_backward
from jaxbp.layers._attention import (
    GPT2_STD,
    attention_backward,
    attention_backward_textbook,
    attention_forward,
    causal_mask,
    causal_self_attention,
    causal_self_attention_backward,
    causal_self_attention_forward,
)
from jaxbp.layers._batchnorm import (
    BatchStatsCache,
    RunningStatsCache,
    batchnorm,
    batchnorm_backward,
    batchnorm_forward,
)
from jaxbp.layers._checkpointed import (
    SegmentCache,
    checkpointed,
    checkpointed_backward,
    checkpointed_backward_textbook,
)
from jaxbp.layers._conv import (
    conv2d,
    conv2d_backward,
    conv2d_backward_textbook,
    conv2d_forward,
)
from jaxbp.layers._dense import dense, dense_backward, dense_forward
from jaxbp.layers._dropout import dropout, dropout_backward, dropout_mask
from jaxbp.layers._embedding import (
    embedding,
    embedding_backward,
    embedding_forward,
)
from jaxbp.layers._gpt import (
    gpt_block,
    gpt_block_backward,
    gpt_block_forward,
    gpt_body,
    gpt_body_backward,
    gpt_body_forward,
)
from jaxbp.layers._gru import gru, gru_backward, gru_forward
from jaxbp.layers._layernorm import layernorm, layernorm_backward, layernorm_forward
from jaxbp.layers._lstm import lstm, lstm_backward, lstm_forward
from jaxbp.layers._pooling import (
    avg_pool,
    avg_pool_backward,
    avg_pool_forward,
    flatten,
    max_pool,
    max_pool_backward,
    max_pool_forward,
)
from jaxbp.layers._position import (
    position_embedding,
    position_embedding_backward,
    position_embedding_forward,
)
from jaxbp.layers._protocol import Layer
from jaxbp.layers._residual import residual
from jaxbp.layers._rnn import rnn, rnn_backward, rnn_forward
from jaxbp.layers._serial import serial, serial_backward, serial_forward, split_key
from jaxbp.layers._softmax import softmax, softmax_backward, softmax_forward
from jaxbp.layers._translate import (
    random_translate,
    translate,
    translate_backward,
    translation_offsets,
)

__all__ = [
    "GPT2_STD",
    "BatchStatsCache",
    "Layer",
    "RunningStatsCache",
    "SegmentCache",
    "activation",
    "activation_backward",
    "attention_backward",
    "attention_backward_textbook",
    "attention_forward",
    "avg_pool",
    "avg_pool_backward",
    "avg_pool_forward",
    "batchnorm",
    "batchnorm_backward",
    "batchnorm_forward",
    "causal_mask",
    "causal_self_attention",
    "causal_self_attention_backward",
    "causal_self_attention_forward",
    "checkpointed",
    "checkpointed_backward",
    "checkpointed_backward_textbook",
    "conv2d",
    "conv2d_backward",
    "conv2d_backward_textbook",
    "conv2d_forward",
    "dense",
    "dense_backward",
    "dense_forward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "embedding",
    "embedding_backward",
    "embedding_forward",
    "flatten",
    "gpt_block",
    "gpt_block_backward",
    "gpt_block_forward",
    "gpt_body",
    "gpt_body_backward",
    "gpt_body_forward",
    "gru",
    "gru_backward",
    "gru_forward",
    "layernorm",
    "layernorm_backward",
    "layernorm_forward",
    "lstm",
    "lstm_backward",
    "lstm_forward",
    "max_pool",
    "max_pool_backward",
    "max_pool_forward",
    "position_embedding",
    "position_embedding_backward",
    "position_embedding_forward",
    "random_translate",
    "residual",
    "rnn",
    "rnn_backward",
    "rnn_forward",
    "serial",
    "serial_backward",
    "serial_forward",
    "softmax",
    "softmax_backward",
    "softmax_forward",
    "split_key",
    "translate",
    "translate_backward",
    "translation_offsets",
]
