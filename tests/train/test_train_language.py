"""fit_language_model: rounds of steps on random windows, validation, resume, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_train_resume import assert_trees_bit_equal

from jaxbp import optim, recipes
from jaxbp.data.text import encode
from jaxbp.train import TrainingDiverged, fit_language_model
from jaxbp.train.language import window_batches, windows

TEXT = "the cat sat on the mat. " * 40
VOCAB = "".join(sorted(set(TEXT)))
TOKENS = encode(TEXT, VOCAB)
BLOCK = 8


def tiny(kind="gru"):
    if kind == "gpt":
        sizes = {"layers": 1, "heads": 2, "width": 16}
    else:
        sizes = {"hidden": (16,), "embed_dim": 8}
    return recipes.language_model(kind, len(VOCAB), block_size=BLOCK, **sizes)


def fit_tiny(model=None, **kwargs):
    settings = {
        "optimizer": optim.adam(1e-2),
        "steps": 5,
        "batch_size": 4,
        "block_size": BLOCK,
        "eval_interval": 2,
        "eval_batches": 2,
        "vocab": VOCAB,
        **kwargs,
    }
    return fit_language_model(model or tiny(), TOKENS[:800], TOKENS[800:], **settings)


def test_records_every_round_and_the_shorter_last_one():
    result = fit_tiny()
    assert [r["step"] for r in result.history] == [2, 4, 5]
    assert set(result.history[0]) == {"step", "train_loss", "val_loss"}
    losses = [r["val_loss"] for r in result.history]
    assert result.best_step == result.history[int(np.argmin(losses))]["step"]
    assert all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize("kind", recipes.TEXT_MODELS)
def test_learns_a_repetitive_text(kind):
    result = fit_tiny(tiny(kind), steps=60, eval_interval=30)
    first_guess = math.log(len(VOCAB))
    assert result.history[-1]["val_loss"] < 0.5 * first_guess


def test_manual_and_autodiff_backprop_train_alike():
    model = recipes.language_model(
        "lstm", len(VOCAB), block_size=BLOCK, hidden=(8,), dtype="float64"
    )
    manual = fit_tiny(model, backprop="manual")
    autodiff = fit_tiny(model, backprop="autodiff")
    for got, want in zip(manual.history, autodiff.history):
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-10)
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-10)


def test_same_seed_same_bits_other_seed_other_numbers():
    a, b, c = fit_tiny(seed=3), fit_tiny(seed=3), fit_tiny(seed=4)
    assert_trees_bit_equal(a.params, b.params)
    assert a.history == b.history
    assert a.history != c.history


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    whole = fit_tiny()
    calls = []
    first = fit_tiny(
        checkpoint_dir=tmp_path, should_stop=lambda: calls.append(1) or True
    )
    assert len(first.history) == 1
    resumed = fit_tiny(checkpoint_dir=tmp_path, resume=True)
    assert resumed.history == whole.history
    assert_trees_bit_equal(resumed.params, whole.params)
    assert_trees_bit_equal(resumed.opt_state, whole.opt_state)


def test_resume_on_another_text_is_refused(tmp_path):
    fit_tiny(checkpoint_dir=tmp_path, steps=2)
    with pytest.raises(ValueError, match="vocab"):
        fit_tiny(checkpoint_dir=tmp_path, resume=True, vocab=VOCAB[::-1])


def test_divergence_names_the_step_from_the_start():
    # a huge L2 under SGD multiplies the weights by 1 - lr·l2 every step
    with pytest.raises(TrainingDiverged, match=r"at step \d+") as caught:
        fit_tiny(optimizer=optim.sgd(1.0), l2=1e4, steps=12, eval_interval=4)
    assert caught.value.step > 4  # in the second round, counted from the start
    assert f"at step {caught.value.step}" in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"steps": 0}, "steps"),
        ({"eval_interval": 0}, "eval_interval"),
        ({"eval_batches": -1}, "eval_batches"),
        ({"block_size": 9}, "shape"),
        ({"batch_size": 3, "devices": 2}, "devices"),
    ],
)
def test_bad_arguments_are_value_errors(change, message):
    with pytest.raises(ValueError, match=message):
        fit_tiny(**change)


def test_bad_token_streams_are_value_errors():
    with pytest.raises(ValueError, match="1-D array of integer"):
        fit_language_model(
            tiny(),
            TOKENS[:800].reshape(40, 20),
            TOKENS[800:],
            optimizer=optim.adam(1e-2),
            steps=1,
            block_size=BLOCK,
        )
    with pytest.raises(ValueError, match="fewer than one window"):
        fit_language_model(
            tiny(),
            TOKENS[:800],
            TOKENS[800:805],
            optimizer=optim.adam(1e-2),
            steps=1,
            block_size=BLOCK,
        )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(10, 60),
    block=st.integers(1, 9),
    batch=st.integers(1, 5),
    number=st.integers(0, 1000),
)
def test_windows_lie_inside_the_stream_and_targets_are_next_tokens(
    n, block, batch, number
):
    tokens = jnp.arange(n, dtype=jnp.int32)
    starts, keys = window_batches(jax.random.key(0), number, n, (3, batch, block))
    assert keys.shape == (3,)
    x, y = windows(tokens, starts, block)
    assert x.shape == y.shape == (3, batch, block)
    assert int(x.min()) >= 0 and int(y.max()) <= n - 1
    np.testing.assert_array_equal(y, x + 1)  # tokens are positions here


@pytest.mark.usefixtures("without_jax_cache")
def test_rounds_loaded_from_the_executable_cache_train_the_same(tmp_path):
    """With jaxbp's executable cache on, a run whose programs are loaded from
    disk (nothing of them left in memory) has the history of one that
    compiled them, bit for bit."""
    from jaxbp import executable_cache
    from jaxbp.compilation import compile_log
    from jaxbp.train import language

    model = tiny("gpt")
    executable_cache.enable(tmp_path)
    try:
        first = fit_tiny(model, steps=3)
        language._compiled_round.cache_clear()
        with compile_log() as log:
            second = fit_tiny(model, steps=3)
    finally:
        executable_cache.disable()
    assert log.programs == log.loaded >= 1  # the rounds' programs: all loaded
    assert second.history == first.history
    assert_trees_bit_equal(second.params, first.params)
