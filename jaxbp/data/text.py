"""A character-level text corpus for language models, offline.

The default text is CPython's own documentation, ``pydoc_data.topics`` (the
topics dict's values joined in sorted key order): English prose and code that
every Python installation carries, so nothing is downloaded. Any UTF-8 file
can be used instead.

- ``TextCorpus``: the vocabulary (the characters present, sorted), and the
  text encoded as int32 token ids, split contiguously: the first 90% for
  training, the last 10% for validation (as nanoGPT does).
- ``encode`` / ``decode``: text ↔ token ids for a vocabulary.
- ``text_batch(corpus, key, batch_size, block_size, split)``: ``batch_size``
  windows of ``block_size`` characters at random offsets, ``x`` (B, T) int32,
  with the next characters as targets ``y`` (B, T) int32: ``y[:, t] = x[:, t+1]``
  and ``y[:, T−1]`` the character after the window. Pure ``jax.random``, usable
  under ``jit``.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxbp.checks import check_int, choose

#: The fraction of the text, from its start, used for training.
TRAIN_FRACTION = 0.9
SPLITS = ("train", "val")


class TextCorpus(NamedTuple):
    """A vocabulary (str of the distinct characters, sorted) and the encoded
    train and validation parts (int32 token ids)."""

    vocab: str
    train: jax.Array
    val: jax.Array

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)


def default_text() -> str:
    """CPython's documentation topics, joined in sorted key order."""
    from pydoc_data.topics import topics

    return "".join(topics[name] for name in sorted(topics))


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path``; a ValueError naming the path when it is
    missing, not a file, empty or not UTF-8 text."""
    if not os.path.isfile(path):
        raise ValueError(f"text file {str(path)!r} does not exist or is not a file")
    with open(path, "rb") as f:
        raw = f.read()
    if not raw:
        raise ValueError(f"text file {str(path)!r} is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"text file {str(path)!r} is not UTF-8 text (byte {err.start})"
        ) from None
    if "\x00" in text:
        raise ValueError(f"text file {str(path)!r} is binary (it contains NUL bytes)")
    return text


def encode(text: str, vocab: str) -> np.ndarray:
    """Token ids (int32) of ``text``'s characters in ``vocab``; a ValueError
    names the first character outside it."""
    index = {c: i for i, c in enumerate(vocab)}
    missing = next((c for c in text if c not in index), None)
    if missing is not None:
        raise ValueError(f"character {missing!r} is not in the vocabulary")
    return np.fromiter((index[c] for c in text), np.int32, len(text))


def decode(tokens, vocab: str) -> str:
    """The text of token ids ``tokens`` (any integer array) in ``vocab``."""
    return "".join(vocab[int(i)] for i in np.asarray(tokens).reshape(-1))


def split_point(n: int, window: int) -> int:
    """Where validation starts: 90% of ``n``, moved so each part holds at
    least one ``window`` (block_size + 1 characters)."""
    return min(max(int(TRAIN_FRACTION * n), window), n - window)


def text_corpus(
    path: str | os.PathLike | None = None, *, block_size: int
) -> TextCorpus:
    """The corpus of ``path`` (default: ``default_text()``), checked to hold
    at least two windows of ``block_size + 1`` characters (one for each split);
    a shorter file is a ValueError naming the path."""
    check_int("block_size", block_size, 1)
    text = default_text() if path is None else read_text(path)
    window = block_size + 1
    if len(text) < 2 * window:
        where = "the default text" if path is None else f"text file {str(path)!r}"
        raise ValueError(
            f"{where} is too short: {len(text)} characters, fewer than two windows "
            f"of block_size + 1 = {window} (one for training, one for validation)"
        )
    vocab = "".join(sorted(set(text)))
    tokens = encode(text, vocab)
    cut = split_point(len(tokens), window)
    return TextCorpus(vocab, jnp.asarray(tokens[:cut]), jnp.asarray(tokens[cut:]))


def text_batch(
    corpus: TextCorpus, key, batch_size: int, block_size: int, split="train"
):
    """``batch_size`` random windows of the ``split`` part: x (B, T) and the
    next-character targets y (B, T), int32, T = ``block_size``."""
    check_int("batch_size", batch_size, 1)
    check_int("block_size", block_size, 1)
    data = getattr(corpus, choose(split, SPLITS, "split"))
    if data.shape[0] < block_size + 1:
        raise ValueError(
            f"block_size {block_size} needs {block_size + 1} characters; the "
            f"{split} split has {data.shape[0]}"
        )
    starts = jax.random.randint(key, (batch_size,), 0, data.shape[0] - block_size)
    offsets = starts[:, None] + jnp.arange(block_size)
    return data[offsets], data[offsets + 1]
