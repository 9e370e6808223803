"""The character-level text corpus: the default text, vocabulary, encode/decode,
the contiguous split, random windows with next-character targets, bad files."""

import jax
import numpy as np
import pytest

from jaxbp.data import text


@pytest.fixture(scope="module")
def default_corpus():
    return text.text_corpus(block_size=8)


def test_default_text_is_pydoc_topics_in_sorted_key_order(default_corpus):
    from pydoc_data.topics import topics

    raw = text.default_text()
    first = min(topics)
    assert raw.startswith(topics[first]) and len(raw) == sum(map(len, topics.values()))
    assert default_corpus.vocab == "".join(sorted(set(raw)))
    n = default_corpus.train.shape[0] + default_corpus.val.shape[0]
    assert n == len(raw)
    assert default_corpus.train.shape[0] == int(0.9 * len(raw))
    assert (
        text.decode(default_corpus.val[:50], default_corpus.vocab)
        == raw[int(0.9 * len(raw)) : int(0.9 * len(raw)) + 50]
    )


def test_encode_decode_round_trip_and_unknown_character():
    vocab = " abc\n"
    tokens = text.encode("ab c\na", vocab)
    assert tokens.dtype == np.int32 and list(tokens) == [1, 2, 0, 3, 4, 1]
    assert text.decode(tokens, vocab) == "ab c\na"
    with pytest.raises(ValueError, match="character 'z' is not in the vocabulary"):
        text.encode("az", vocab)


@pytest.mark.parametrize("split", ["train", "val"])
def test_windows_are_contiguous_with_next_character_targets(default_corpus, split):
    x, y = jax.jit(lambda k: text.text_batch(default_corpus, k, 16, 8, split))(
        jax.random.key(0)
    )
    assert x.shape == y.shape == (16, 8) and x.dtype == y.dtype == np.int32
    data = np.asarray(getattr(default_corpus, split))
    x, y = np.asarray(x), np.asarray(y)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    windows = np.lib.stride_tricks.sliding_window_view(data, 9)
    for row_x, row_y in zip(x, y):
        starts = np.flatnonzero((windows[:, :8] == row_x).all(axis=1))
        assert any(windows[s, 8] == row_y[-1] for s in starts)
    other, _ = text.text_batch(default_corpus, jax.random.key(1), 16, 8, split)
    assert not np.array_equal(np.asarray(other), x)  # the key draws the offsets


def test_a_small_file_splits_with_one_window_each(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text("héllo wörld, hello!", encoding="utf-8")  # 19 characters
    corpus = text.text_corpus(path, block_size=4)
    assert corpus.vocab == "".join(sorted(set("héllo wörld, hello!")))
    assert corpus.train.shape[0] + corpus.val.shape[0] == 19
    assert corpus.val.shape[0] >= 5
    x, _ = text.text_batch(corpus, jax.random.key(0), 3, 4, "val")
    assert (
        text.decode(x[0], corpus.vocab) in "héllo wörld, hello!"[14:]
    )  # val: the last 5


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"\xff\xfe\x00\x01binary", "is not UTF-8 text"),
        (b"abc\x00def\x00ghijklmnop", "is binary"),
        (b"short text", "too short: 10 characters"),
    ],
    ids=["missing", "empty", "not-utf8", "nul", "short"],
)
def test_bad_files_raise_value_errors_naming_the_path(tmp_path, content, match):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        text.text_corpus(path, block_size=8)
    assert str(path) in str(info.value)


def test_bad_batch_arguments(default_corpus):
    with pytest.raises(ValueError, match="split"):
        text.text_batch(default_corpus, jax.random.key(0), 2, 8, "test")
    with pytest.raises(ValueError, match="batch_size"):
        text.text_batch(default_corpus, jax.random.key(0), 0, 8)
    with pytest.raises(ValueError, match="block_size"):
        text.text_corpus(block_size=0)
