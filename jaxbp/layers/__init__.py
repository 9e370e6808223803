"""Layers on the layer protocol: ``init``, ``forward`` (returns a cache) and ``backward``.

Each layer's backward pass sits next to its forward pass and states its
derivative in its docstring.

- ``dense``, ``activation``: the MLP's layers.
- ``batchnorm``, ``layernorm``: normalization (batch norm keeps running
  averages in ``state``).
- ``dropout``: inverted dropout with an explicit PRNG key.
- ``random_translate``: data augmentation, random integer shifts of images in
  training mode (an explicit PRNG key, like dropout).
- ``residual``: y = x + f(x) around any layers; ``serial``: layers in sequence.
- ``conv2d``, ``max_pool``, ``avg_pool``, ``flatten``: NHWC images.
- ``rnn``: a tanh RNN with backpropagation through time.
- ``softmax``: softmax over the last axis.
"""

from jaxbp.layers._activation import activation, activation_backward
from jaxbp.layers._batchnorm import (
    BatchStatsCache,
    RunningStatsCache,
    batchnorm,
    batchnorm_backward,
    batchnorm_forward,
)
from jaxbp.layers._conv import conv2d, conv2d_backward, conv2d_forward
from jaxbp.layers._dense import dense, dense_backward, dense_forward
from jaxbp.layers._dropout import dropout, dropout_backward, dropout_mask
from jaxbp.layers._layernorm import layernorm, layernorm_backward, layernorm_forward
from jaxbp.layers._pooling import (
    avg_pool,
    avg_pool_backward,
    avg_pool_forward,
    flatten,
    max_pool,
    max_pool_backward,
    max_pool_forward,
)
from jaxbp.layers._protocol import Layer
from jaxbp.layers._remat import checkpointed
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
    "BatchStatsCache",
    "Layer",
    "RunningStatsCache",
    "activation",
    "activation_backward",
    "avg_pool",
    "avg_pool_backward",
    "avg_pool_forward",
    "batchnorm",
    "batchnorm_backward",
    "batchnorm_forward",
    "checkpointed",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "dense",
    "dense_backward",
    "dense_forward",
    "dropout",
    "dropout_backward",
    "dropout_mask",
    "flatten",
    "layernorm",
    "layernorm_backward",
    "layernorm_forward",
    "max_pool",
    "max_pool_backward",
    "max_pool_forward",
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
