"""The layers beyond the MLP: hand-written backward passes against jax.vjp / jax.grad
and finite differences, under jit and vmap, plus each layer's own semantics."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import RTOL, as_float64, assert_trees_rel_close
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from jax import lax

import jaxbp
from jaxbp import layers as L
from jaxbp.layers import _windows

KINDS = (
    "batchnorm",
    "layernorm",
    "dropout",
    "random_translate",
    "residual",
    "conv2d",
    "max_pool",
    "avg_pool",
    "flatten",
    "rnn",
    "lstm",
    "gru",
    "softmax",
)
IMAGES = [(5, 5, 2), (6, 7, 1)]
# layers whose training mode differs from evaluation (batch statistics, or
# randomness drawn per call from the key)
RANDOM_OR_BATCH = ("batchnorm", "dropout", "random_translate")
VECTOR = (4,)

# ------------------------------------------------------------------ problems
#
# Layers are built through a cache keyed by their configuration, so a draw that
# repeats a configuration reuses the compiled programs of the earlier one
# (jit caches on the layer functions, which are new closures per layer).

NORM_SHAPES = [VECTOR, (3, 3, 4)]


@functools.cache
def make_layer(kind, config):
    if kind == "batchnorm":
        return L.batchnorm(momentum=0.8)
    if kind == "layernorm":
        return L.layernorm()
    if kind == "dropout":
        return L.dropout(config)
    if kind == "random_translate":
        return L.random_translate(config)
    if kind == "residual":  # (a convolutional one is in every_layer_model)
        return L.residual(L.dense(4), L.activation("tanh"), L.dense(4))
    if kind == "conv2d":
        kernel, stride, padding, use_bias = config
        return L.conv2d(3, kernel, stride, padding, "xavier", use_bias=use_bias)
    if kind == "max_pool":
        return L.max_pool(*config)
    if kind == "avg_pool":
        return L.avg_pool(*config)
    if kind == "flatten":
        return L.flatten()
    if kind in ("rnn", "lstm", "gru"):  # config: return_sequences
        return getattr(L, kind)(3, return_sequences=config)
    if kind == "softmax":
        return L.softmax()
    raise AssertionError(kind)


@st.composite
def layer_problems(draw, kind, dtypes=("float32", "float64")):
    """One layer of ``kind``, its per-example input shape, batch, mode, dtype, seed."""
    shape, config = draw(st.sampled_from(NORM_SHAPES)), None
    if kind == "dropout":
        config = draw(st.sampled_from([0.0, 0.3, 0.5]))
    elif kind == "random_translate":
        shape = draw(st.sampled_from(IMAGES))
        config = draw(st.sampled_from([0, 1, 2]))
    elif kind == "residual":
        shape = VECTOR
    elif kind == "conv2d":
        shape = draw(st.sampled_from(IMAGES))
        config = (
            draw(st.sampled_from([1, 2, 3, (3, 2)])),
            draw(st.sampled_from([1, 2])),
            draw(st.sampled_from(["SAME", "VALID"])),
            draw(st.booleans()),
        )
    elif kind in ("max_pool", "avg_pool"):
        shape = draw(st.sampled_from(IMAGES))
        config = (
            draw(st.sampled_from([2, 3])),
            draw(st.sampled_from([None, 1, 2])),
            draw(st.sampled_from(["SAME", "VALID"])),
        )
    elif kind == "flatten":
        shape = draw(st.sampled_from(IMAGES))
    elif kind in ("rnn", "lstm", "gru"):
        config = draw(st.booleans())
        shape = (draw(st.sampled_from([1, 3, 6])), 2)
    return {
        "kind": kind,
        "layer": make_layer(kind, config),
        "config": config,
        "shape": shape,
        # batch norm over one example is degenerate (x̂ = 0)
        "batch": 4 if kind == "batchnorm" else draw(st.sampled_from([1, 4])),
        # only batch norm, dropout and random translation behave differently
        # in training
        "train": draw(st.booleans()) if kind in RANDOM_OR_BATCH else True,
        "dtype": draw(st.sampled_from(dtypes)),
        "seed": draw(st.integers(0, 2**16)),
    }


def normal(seed, shape, dtype):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), dtype)


def random_input(problem, leading=()):
    shape = (*leading, problem["batch"], *problem["shape"])
    return normal(problem["seed"], shape, problem["dtype"])


def init_layer(problem):
    """(out_shape, params, state); batch norm gets γ, β, running averages other
    than their initial 1, 0, 0, 1."""
    out_shape, params, state = problem["layer"].init(
        jax.random.key(problem["seed"]), problem["shape"], jnp.dtype(problem["dtype"])
    )
    if problem["kind"] == "batchnorm":
        rng = np.random.default_rng(problem["seed"] + 1)
        c = state["mean"].shape
        state = {
            "mean": jnp.asarray(rng.normal(size=c), problem["dtype"]),
            "var": jnp.asarray(rng.uniform(0.5, 2, size=c), problem["dtype"]),
        }
        params = {
            "gamma": jnp.asarray(rng.uniform(0.5, 2, size=c), problem["dtype"]),
            "beta": jnp.asarray(rng.normal(size=c), problem["dtype"]),
        }
    return out_shape, params, state


@functools.cache
def model_around(layer, shape, dtype):
    """A layer with parameters (so the tested layer's dx reaches a gradient),
    the tested layer, then a dense head with 2 outputs (keeping the loss O(1),
    hence the finite differences' rounding small)."""
    if len(shape) == 3:
        pre = [L.conv2d(shape[2], 1, init="xavier")]
    elif len(shape) == 1:
        pre = [L.dense(shape[0])]
    else:  # sequences: the recurrent layers have parameters of their own
        pre = []
    head = [L.flatten(), L.dense(2)]
    return jaxbp.sequential(*pre, layer, *head, in_shape=shape, dtype=dtype)


def model_of(problem):
    return model_around(problem["layer"], problem["shape"], problem["dtype"])


def targets_for(problem, leading=()):
    shape = (*leading, problem["batch"], 2)
    return normal(problem["seed"] + 3, shape, problem["dtype"])


def pool_windows(problem, x):
    """The windows (B, Ho, Wo, K, C) a pooling layer of ``problem`` sees in ``x``."""
    window, stride, padding = problem["config"]
    geometry = _windows.image_geometry(
        x.shape[1:], (window,) * 2, (stride or window,) * 2, padding, "pool"
    )
    return _windows.patches(_windows.pad_spatial(x, geometry, -jnp.inf), geometry)


def min_tie_gap(windows):
    """The smallest gap between a window's largest and second-largest entry."""
    if windows.shape[3] < 2:
        return np.inf
    top2 = -jnp.sort(-windows, axis=3)[:, :, :, :2]
    return float(jnp.min(top2[:, :, :, 0] - top2[:, :, :, 1]))


# ------------------------------------------------------- manual vs autodiff


def manual_and_vjp(layer, params, state, x, dy, key, train):
    """(dparams, dx) from the layer's backward and from jax.vjp of its forward."""
    _, cache, _ = layer.forward(params, state, x, key=key, train=train)
    manual = layer.backward(params, cache, dy)
    _, pullback = jax.vjp(
        lambda p, x: layer.forward(p, state, x, key=key, train=train)[0], params, x
    )
    return manual, pullback(dy)


@functools.partial(jax.jit, static_argnames=("layer", "train", "groups"))
def batched_and_per_example(layer, params, state, x, dy, key, *, train, groups):
    """``manual_and_vjp`` on the whole batch, and under vmap: per example (each
    a batch of one) or, for batch norm, per group of examples."""
    whole = manual_and_vjp(layer, params, state, x, dy, key, train)

    def one(xi, dyi):
        if groups == 1:
            xi, dyi = xi[None], dyi[None]
        return manual_and_vjp(layer, params, state, xi, dyi, key, train)

    def split(a):
        return a.reshape(-1, groups, *a.shape[1:]) if groups > 1 else a

    return whole, jax.vmap(one)(split(x), split(dy))


def assert_manual_equals_vjp(problem, params, state, x, dy, key, *, groups):
    """``batched_and_per_example``'s manual and jax.vjp results agree, leaf by
    leaf; in float32 each leaf is judged with its term scale from jax.vjp in
    float64 (batch norm's dx is a nearly cancelling sum). Returns them."""
    run = {"train": problem["train"], "groups": groups}
    layer, dtype = problem["layer"], problem["dtype"]
    whole, per_example = batched_and_per_example(
        layer, params, state, x, dy, key, **run
    )
    references = (None, None)
    if dtype != "float64":
        whole64, per_example64 = batched_and_per_example(
            layer, *as_float64((params, state, x, dy)), key, **run
        )
        references = (whole64[1], per_example64[1])
    assert_trees_rel_close(*whole, RTOL[dtype], references[0])
    assert_trees_rel_close(*per_example, RTOL[dtype], references[1])
    return whole, per_example


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=5)
@given(data=st.data())
def test_layer_backward_equals_jax_vjp_under_jit_and_vmap(kind, data):
    problem = data.draw(layer_problems(kind))
    out_shape, params, state = init_layer(problem)
    x = random_input(problem)
    dy = normal(problem["seed"] + 2, (x.shape[0], *out_shape), x.dtype)
    key = jax.random.key(problem["seed"])
    # batch norm over a batch of one is degenerate: vmap over groups of two
    groups = 2 if kind == "batchnorm" else 1
    whole, per_example = assert_manual_equals_vjp(
        problem, params, state, x, dy, key, groups=groups
    )
    (dparams, dx), _ = whole
    chex.assert_trees_all_equal_dtypes((dparams, dx), (params, x))
    assert dx.shape == x.shape
    if kind not in RANDOM_OR_BATCH:  # (dropout, translation: drawn per call)
        # dx of the batch is the per-example dx's stacked, dparams their sum
        (dparams_1, dx_1), _ = per_example
        summed = jax.tree.map(lambda g: g.sum(axis=0), dparams_1)
        assert_trees_rel_close(
            (summed, dx_1[:, 0]), (dparams, dx), 100 * RTOL[problem["dtype"]]
        )


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=2)
@given(data=st.data())
def test_layer_in_a_model_equals_finite_differences(kind, data):
    problem = data.draw(layer_problems(kind, dtypes=("float64",)))
    assert_model_equals_finite_differences(problem)


#: (kind, config, per-example shape) of the layers whose training mode differs
#: from evaluation, each tested below in both modes (hypothesis draws the mode)
BOTH_MODES = [
    ("batchnorm", None, VECTOR),
    ("batchnorm", None, (3, 3, 4)),
    ("dropout", 0.3, VECTOR),
    ("random_translate", 1, (5, 5, 2)),
]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind, config, shape", BOTH_MODES)
def test_batch_and_random_layers_in_both_modes(kind, config, shape, train):
    """Batch norm (batch statistics / running averages), dropout and random
    translation with a fixed key: jax.vjp under jit and vmap in both dtypes,
    and finite differences in float64, in training and in evaluation mode."""
    for dtype in ("float32", "float64"):
        problem = {
            "kind": kind,
            "layer": make_layer(kind, config),
            "config": config,
            "shape": shape,
            "batch": 4,
            "train": train,
            "dtype": dtype,
            "seed": 7,
        }
        out_shape, params, state = init_layer(problem)
        x = random_input(problem)
        dy = normal(problem["seed"] + 2, (x.shape[0], *out_shape), x.dtype)
        key = jax.random.key(problem["seed"])
        groups = 2 if kind == "batchnorm" else 1
        assert_manual_equals_vjp(problem, params, state, x, dy, key, groups=groups)
    assert_model_equals_finite_differences(problem)  # (float64)


def assert_model_equals_finite_differences(problem):
    """check_grads with finite differences on the layer inside a small model."""
    kind = problem["kind"]
    model = model_of(problem)
    params, state = model.init_with_state(jax.random.key(problem["seed"]))
    x = random_input(problem)
    if kind == "max_pool":  # differences are wrong within a step of a tie
        pooled = model.layers[0].forward(params[0], (), x)[0]
        assume(min_tie_gap(pool_windows(problem, pooled)) > 1e-4)
    # batch norm in training mode makes the bias before it irrelevant: its
    # gradient is exactly 0 and the differences are rounding, ~ eps |L| / h
    fd_atol = 1e-8 if kind == "batchnorm" else 1e-9
    report = jaxbp.check_grads(
        model,
        params,
        x,
        targets_for(problem),
        loss="mse",
        finite_differences=True,
        state=state,
        key=jax.random.key(problem["seed"]),
        train=problem["train"],
        fd_atol=fd_atol,
    )
    assert report.ok, str(report)


@pytest.mark.parametrize("kind, config, shape", BOTH_MODES)
def test_forward_defaults_to_evaluation_mode(kind, config, shape):
    problem = {"kind": kind, "layer": make_layer(kind, config), "config": config}
    problem.update(shape=shape, batch=4, train=False, dtype="float64", seed=3)
    _, params, state = init_layer(problem)
    x = random_input(problem)
    layer = problem["layer"]
    chex.assert_trees_all_equal(
        layer.forward(params, state, x),
        layer.forward(params, state, x, train=False),
    )


def test_every_kind_is_exported():
    for name in (*KINDS, "dense", "activation", "serial"):
        assert name in L.__all__
        assert callable(getattr(L, name))


# ------------------------------------------------------------------ batch norm


@pytest.mark.parametrize("shape", [(3,), (4, 5, 3)])
def test_batchnorm_training_uses_batch_statistics_and_updates_running_averages(shape):
    layer = L.batchnorm(momentum=0.8, eps=1e-5)
    _, params, state = layer.init(None, shape, jnp.float64)
    params = {"gamma": jnp.array([1.0, 2.0, 0.5]), "beta": jnp.array([0.0, -1.0, 3.0])}
    state = {"mean": jnp.array([0.1, 0.2, 0.3]), "var": jnp.array([1.0, 2.0, 3.0])}
    x = 3 + 2 * normal(0, (6, *shape), jnp.float64)
    y, _, new_state = layer.forward(params, state, x, train=True)
    axes = tuple(range(x.ndim - 1))  # batch and spatial axes
    mean, var = np.mean(np.asarray(x), axis=axes), np.var(np.asarray(x), axis=axes)
    np.testing.assert_allclose(np.mean(y, axis=axes), params["beta"], atol=1e-12)
    np.testing.assert_allclose(
        np.std(y, axis=axes), params["gamma"] * np.sqrt(var / (var + 1e-5)), rtol=1e-12
    )
    # running averages: momentum · old + (1 − momentum) · batch (biased variance)
    np.testing.assert_allclose(new_state["mean"], 0.8 * state["mean"] + 0.2 * mean)
    np.testing.assert_allclose(new_state["var"], 0.8 * state["var"] + 0.2 * var)


def test_batchnorm_evaluation_uses_running_averages():
    layer = L.batchnorm(eps=1e-3)
    params = {"gamma": jnp.array([1.0, 2.0]), "beta": jnp.array([0.5, -1.0])}
    state = {"mean": jnp.array([1.0, -2.0]), "var": jnp.array([4.0, 0.25])}
    x = normal(1, (5, 2), jnp.float64)
    y, _, new_state = layer.forward(params, state, x, train=False)
    want = params["gamma"] * (x - state["mean"]) / np.sqrt(state["var"] + 1e-3)
    np.testing.assert_allclose(y, want + params["beta"], rtol=1e-12)
    assert new_state is state
    # each example on its own: no batch statistics in evaluation mode
    y0, _, _ = layer.forward(params, state, x[:1], train=False)
    np.testing.assert_allclose(y0, y[:1], rtol=1e-12)


def test_batchnorm_state_threads_through_a_model():
    model = jaxbp.mlp([3, 4, 2], "tanh", batchnorm=True, dtype=jnp.float64)
    params, state = model.init_with_state(jax.random.key(0))
    x, y = normal(0, (8, 3), jnp.float64), jnp.array([0, 1] * 4)
    out = jaxbp.forward_backward(model, params, x, y, state=state)
    bn_state = out.state[1]
    h = x @ params[0]["w"]  # no dense bias before batch norm
    np.testing.assert_allclose(bn_state["mean"], 0.1 * np.mean(h, axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        bn_state["var"], 0.9 + 0.1 * np.var(h, axis=0), rtol=1e-12
    )
    assert out.state[0] == () and out.state[2] == ()


def test_batchnorm_bad_arguments():
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]; got 1.5"):
        L.batchnorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"eps must be > 0; got 0"):
        L.batchnorm(eps=0)
    with pytest.raises(
        ValueError, match=r"batchnorm expects .* got per-example shape \(\)"
    ):
        L.batchnorm().init(None, (), jnp.float32)


# ------------------------------------------------------------------ dropout


def test_dropout_drops_rate_fraction_and_rescales():
    rate = 0.3
    layer = L.dropout(rate)
    x = jnp.ones((400, 250), jnp.float32)
    y, mask, _ = layer.forward((), (), x, key=jax.random.key(7), train=True)
    dropped = float(jnp.mean(y == 0))
    assert abs(dropped - rate) < 0.01  # 100k Bernoulli draws: std 0.0015
    kept = np.asarray(y)[np.asarray(y) != 0]
    np.testing.assert_allclose(kept, 1 / (1 - rate), rtol=1e-6)
    assert abs(float(jnp.mean(y)) - 1) < 0.02  # inverted dropout keeps E[y] = x
    # same key, same mask; another key, another mask
    y_again, _, _ = layer.forward((), (), x, key=jax.random.key(7), train=True)
    np.testing.assert_array_equal(y, y_again)
    y_other, _, _ = layer.forward((), (), x, key=jax.random.key(8), train=True)
    assert not np.array_equal(y, y_other)
    # the backward pass uses the same mask
    _, dx = layer.backward((), mask, 2 * x)
    np.testing.assert_array_equal(dx, 2 * y)


def test_dropout_evaluation_mode_is_identity():
    layer = L.dropout(0.5)
    x = normal(0, (3, 4), jnp.float32)
    y, cache, _ = layer.forward((), (), x, key=None, train=False)
    assert y is x
    assert layer.backward((), cache, x)[1] is x
    # rate 0 needs no key even in training mode
    y0, _, _ = L.dropout(0.0).forward((), (), x, key=None, train=True)
    assert y0 is x


def test_dropout_errors():
    for rate in (-0.1, 1.0, 2, "0.5", True):
        with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"):
            L.dropout(rate)
    model = jaxbp.mlp([3, 4, 2], dropout=0.5)
    params = model.init(jax.random.key(0))
    x, y = jnp.zeros((2, 3)), jnp.array([0, 1])
    with pytest.raises(ValueError, match=r"needs a PRNG key in training mode"):
        jaxbp.loss_and_grad(model, params, x, y)
    # evaluation needs no key
    assert model.apply(params, x).shape == (2, 2)


# ------------------------------------------------------------------ random translation


def shifted_reference(x, offsets):
    """y[b, i, j] = x[b, i − s_b, j − t_b], 0 outside, by explicit loops."""
    x, y = np.asarray(x), np.zeros(x.shape, np.asarray(x).dtype)
    _, height, width, _ = x.shape
    for b, (s, t) in enumerate(np.asarray(offsets)):
        for i in range(height):
            for j in range(width):
                if 0 <= i - s < height and 0 <= j - t < width:
                    y[b, i, j] = x[b, i - s, j - t]
    return y


@pytest.mark.parametrize("max_shift", [1, 2, 7])
def test_random_translate_shifts_each_image_with_zero_fill(max_shift):
    layer = L.random_translate(max_shift)
    x = normal(0, (300, 5, 4, 2), jnp.float64)
    y, offsets, _ = layer.forward((), (), x, key=jax.random.key(7), train=True)
    assert offsets.shape == (300, 2) and y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(y, shifted_reference(x, offsets))
    # every offset in [−k, k] along both axes is drawn, and no other
    for axis in (0, 1):
        drawn = set(np.asarray(offsets[:, axis]).tolist())
        assert drawn == set(range(-max_shift, max_shift + 1))
    # same key, same shifts; another key, other shifts
    y_again, _, _ = layer.forward((), (), x, key=jax.random.key(7), train=True)
    np.testing.assert_array_equal(y, y_again)
    y_other, _, _ = layer.forward((), (), x, key=jax.random.key(8), train=True)
    assert not np.array_equal(y, y_other)


def test_random_translate_backward_is_the_inverse_shift():
    layer = L.random_translate(2)
    x = normal(1, (64, 6, 5, 3), jnp.float64)
    dy = normal(2, x.shape, jnp.float64)
    y, offsets, _ = layer.forward((), (), x, key=jax.random.key(3), train=True)
    dparams, dx = layer.backward((), offsets, dy)
    assert dparams == ()
    # dx[b, i, j] = dy[b, i + s_b, j + t_b], 0 outside: the shift by −offsets
    np.testing.assert_array_equal(dx, shifted_reference(dy, -offsets))
    # the adjoint identity <shift(x), dy> = <x, dx>
    np.testing.assert_allclose(jnp.vdot(y, dy), jnp.vdot(x, dx), rtol=1e-12)
    # pixels shifted out of the image get zero gradient: x ↦ y drops them
    lost = shifted_reference(np.ones(x.shape), -offsets) == 0
    assert lost.any() and np.all(np.asarray(dx)[lost] == 0)


def test_random_translate_evaluation_mode_is_identity():
    layer = L.random_translate(2)
    x = normal(0, (3, 4, 4, 1), jnp.float32)
    y, cache, _ = layer.forward((), (), x, key=None, train=False)
    assert y is x
    assert layer.backward((), cache, x)[1] is x
    # max_shift 0 needs no key even in training mode
    y0, _, _ = L.random_translate(0).forward((), (), x, key=None, train=True)
    assert y0 is x


def test_random_translate_errors():
    for max_shift in (-1, 1.5, "1", True, None):
        with pytest.raises(ValueError, match=r"max_shift must be an integer >= 0"):
            L.random_translate(max_shift)
    with pytest.raises(ValueError, match=r"random_translate expects .*got per-"):
        L.random_translate(1).init(None, (8,), jnp.float32)
    model = jaxbp.sequential(
        L.random_translate(1), L.flatten(), L.dense(2), in_shape=(3, 3, 1)
    )
    params = model.init(jax.random.key(0))
    x, y = jnp.zeros((2, 3, 3, 1)), jnp.array([0, 1])
    with pytest.raises(ValueError, match=r"needs a PRNG key in training mode"):
        jaxbp.loss_and_grad(model, params, x, y)
    # evaluation needs no key
    assert model.apply(params, x).shape == (2, 2)


def test_cnn_translate_puts_random_translate_first():
    from jaxbp.model import cnn

    assert cnn(translate=1).layer_names[0] == "random_translate"
    assert "random_translate" not in cnn(translate=0).layer_names
    with pytest.raises(ValueError, match=r"max_shift must be an integer >= 0"):
        cnn(translate=-1)


# ------------------------------------------------------------------ residual


def test_residual_adds_the_input_and_checks_shapes():
    inner = L.dense(3)
    block = L.residual(inner)
    _, params, _ = block.init(jax.random.key(0), (3,), jnp.float64)
    x = normal(0, (2, 3), jnp.float64)
    y, _, _ = block.forward(params, ((),), x)
    np.testing.assert_allclose(y, x + x @ params[0]["w"] + params[0]["b"], rtol=1e-12)
    with pytest.raises(ValueError, match=r"keep the shape.*\(3,\) to \(5,\)"):
        L.residual(L.dense(5)).init(jax.random.key(0), (3,), jnp.float32)


# ------------------------------------------------------------------ convolution


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", [(7, 5, 2), (6, 6, 3)])
def test_conv2d_forward_matches_lax_and_shapes(shape, stride, padding):
    layer = L.conv2d(4, 3, stride, padding)
    out_shape, params, _ = layer.init(jax.random.key(0), shape, jnp.float32)
    x = normal(0, (2, *shape), jnp.float32)
    y, _, _ = layer.forward(params, (), x)
    want = (
        lax.conv_general_dilated(
            x,
            params["w"],
            (stride, stride),
            padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        + params["b"]
    )
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert y.shape[1:] == out_shape
    assert params["w"].shape == (3, 3, shape[2], 4)


@functools.partial(jax.jit, static_argnames="geometry")
def conv2d_backward_both_forms(params, x, dy, *, geometry):
    return (
        L.conv2d_backward(params, x, dy, geometry=geometry),
        L.conv2d_backward_textbook(params, x, dy, geometry=geometry),
    )


@settings(max_examples=10)
@given(data=st.data())
def test_conv2d_fast_backward_equals_the_textbook_form(data):
    """dW as a dilated convolution of transposed operands (the layer's) equals
    dW as the sum over output positions of patch ⊗ dy, and dx likewise."""
    problem = data.draw(layer_problems("conv2d"))
    kernel, stride, padding, _ = problem["config"]
    geometry = _windows.image_geometry(
        problem["shape"],
        _windows.pair(kernel, "kernel_size", "conv2d"),
        _windows.pair(stride, "stride", "conv2d"),
        padding,
        "conv2d",
    )
    out_shape, params, _ = init_layer(problem)
    x = random_input(problem)
    dy = normal(problem["seed"] + 2, (x.shape[0], *out_shape), x.dtype)
    fast, textbook = conv2d_backward_both_forms(params, x, dy, geometry=geometry)
    chex.assert_trees_all_equal_dtypes(fast, textbook, (params, x))
    assert_trees_rel_close(fast, textbook, RTOL[problem["dtype"]])


def test_conv2d_he_initialization_variance():
    _, params, _ = L.conv2d(64, 3).init(jax.random.key(0), (8, 8, 32), jnp.float32)
    np.testing.assert_allclose(np.var(params["w"]), 2 / (3 * 3 * 32), rtol=0.05)
    assert not np.any(params["b"])


def test_conv2d_and_pool_bad_arguments():
    with pytest.raises(
        ValueError,
        match=r"expects inputs of per-example shape \(height, width, channels\); got per-example shape \(64,\)",
    ):
        L.conv2d(4).init(jax.random.key(0), (64,), jnp.float32)
    with pytest.raises(ValueError, match=r"window 5 is larger than the input side 4"):
        L.conv2d(4, 5, padding="VALID").init(jax.random.key(0), (4, 4, 1), jnp.float32)
    with pytest.raises(
        ValueError, match=r"unknown conv2d padding 'FULL'; expected one of: SAME, VALID"
    ):
        L.conv2d(4, padding="full")
    with pytest.raises(
        ValueError, match=r"kernel_size must be a positive integer or a pair"
    ):
        L.conv2d(4, kernel_size=0)
    with pytest.raises(ValueError, match=r"features must be a positive integer"):
        L.conv2d(0)
    with pytest.raises(
        ValueError, match=r"max_pool expects inputs of per-example shape"
    ):
        L.max_pool(2).init(None, (4, 4), jnp.float32)
    with pytest.raises(ValueError, match=r"stride must be a positive integer"):
        L.avg_pool(2, stride=(1, 2, 3))


# ------------------------------------------------------------------ pooling


@functools.partial(jax.jit, static_argnames=("window", "stride", "padding"))
def max_pool_and_references(x, dy, *, window, stride, padding):
    """Our max pool's output and backward; lax.reduce_window's output and its
    jax.grad; jax.grad of our forward pass."""
    layer = L.max_pool(window, stride, padding)

    def reference(x):
        dims, strides = (1, window, window, 1), (1, stride, stride, 1)
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, padding)

    def ours(x):
        return layer.forward((), (), x)[0]

    y, cache, _ = layer.forward((), (), x)
    _, dx = layer.backward((), cache, dy)
    return (
        y,
        dx,
        reference(x),
        jax.grad(lambda x: jnp.sum(reference(x) * dy))(x),
        jax.grad(lambda x: jnp.sum(ours(x) * dy))(x),
    )


@pytest.mark.parametrize(
    ("window", "stride", "padding"), [(2, 2, "VALID"), (3, 1, "SAME"), (3, 2, "VALID")]
)
def test_max_pool_ties_route_like_jax_grad_of_reduce_window(window, stride, padding):
    """After a ReLU many window entries tie at 0: all of dy goes to the first
    maximum in row-major window order, exactly as jax.grad of lax.reduce_window
    max routes it (and as jax.grad of our own forward pass does)."""
    x = jnp.maximum(jnp.round(normal(0, (2, 6, 7, 2), jnp.float64)), 0)
    x = x.at[0, :3, :3].set(0.0)  # a block of exact ties
    geometry = _windows.image_geometry(
        x.shape[1:], (window,) * 2, (stride,) * 2, padding, "pool"
    )
    dy = normal(1, (2, geometry[0].out, geometry[1].out, 2), jnp.float64)
    y, dx, y_ref, dx_ref, dx_ours = max_pool_and_references(
        x, dy, window=window, stride=stride, padding=padding
    )
    padded = _windows.pad_spatial(x, geometry, -jnp.inf)
    assert min_tie_gap(_windows.patches(padded, geometry)) == 0  # there are ties
    np.testing.assert_array_equal(y, y_ref)
    # the same entries get the gradient (up to the order of summation where
    # overlapping windows add up)
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=1e-14)
    np.testing.assert_allclose(dx, dx_ours, rtol=0, atol=1e-14)


def test_max_pool_first_maximum_gets_the_gradient():
    layer = L.max_pool(2)
    x = jnp.zeros((1, 2, 2, 1), jnp.float32)
    _, cache, _ = layer.forward((), (), x)
    _, dx = layer.backward((), cache, jnp.ones((1, 1, 1, 1), jnp.float32))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0], [0, 0]])
    x = jnp.array([[0.0, 2.0], [2.0, 1.0]]).reshape(1, 2, 2, 1)
    _, cache, _ = layer.forward((), (), x)
    _, dx = layer.backward((), cache, jnp.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx[0, :, :, 0], [[0, 1], [0, 0]])


def test_relu_then_max_pool_model_agrees_with_autodiff_at_ties():
    model = jaxbp.sequential(
        L.conv2d(4, 3),
        L.activation("relu"),
        L.max_pool(2),
        L.flatten(),
        L.dense(3),
        in_shape=(6, 6, 1),
        dtype="float64",
    )
    params = model.init(jax.random.key(0))
    # zero images: conv output = bias = 0, so every window ties at ReLU's 0
    x = jnp.zeros((4, 6, 6, 1)).at[:2].set(normal(0, (2, 6, 6, 1), jnp.float64))
    y = jnp.array([0, 1, 2, 0])
    report = jaxbp.check_grads(model, params, x, y)
    assert report.ok, str(report)
    assert report.max_autodiff_rel < 1e-13


def test_avg_pool_same_padding_averages_real_entries_only():
    layer = L.avg_pool(3, 1, "SAME")
    x = jnp.ones((1, 4, 4, 1), jnp.float64)
    y, _, _ = layer.forward((), (), x)
    np.testing.assert_allclose(y, 1.0)  # padding would pull corners to 4/9
    x = normal(0, (2, 5, 6, 3), jnp.float64)
    y, _, _ = L.avg_pool(2).forward((), (), x)
    want = x[:, :4, :6].reshape(2, 2, 2, 3, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(y, want, rtol=1e-12)


def test_flatten_shapes():
    layer = L.flatten()
    out_shape, _, _ = layer.init(None, (3, 4, 2), jnp.float32)
    assert out_shape == (24,)
    x = normal(0, (5, 3, 4, 2), jnp.float32)
    y, cache, _ = layer.forward((), (), x)
    np.testing.assert_array_equal(y, x.reshape(5, 24))
    np.testing.assert_array_equal(layer.backward((), cache, y)[1], x)


# ------------------------------------------------------------------ softmax, layernorm


def test_softmax_and_layernorm_forward():
    x = normal(0, (3, 5), jnp.float64) * 50
    y, _, _ = L.softmax().forward((), (), x)
    np.testing.assert_allclose(y, jax.nn.softmax(x), rtol=1e-12)
    np.testing.assert_allclose(np.sum(y, axis=-1), 1.0, rtol=1e-12)
    layer = L.layernorm(eps=1e-6)
    _, params, _ = layer.init(None, (5,), jnp.float64)
    y, _, _ = layer.forward(params, (), 2 + 3 * x)
    np.testing.assert_allclose(np.mean(y, axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(np.std(y, axis=-1), 1, rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"softmax expects .* got per-example shape \(\)"
    ):
        L.softmax().init(None, (), jnp.float32)
    with pytest.raises(ValueError, match=r"layernorm expects"):
        L.layernorm().init(None, (), jnp.float32)


# ------------------------------------------------------------------ no autodiff

# no_differentiation: the fixture in conftest.py


def every_layer_model(dtype="float32"):
    """One model with every new layer in it (images, then vectors)."""
    return jaxbp.sequential(
        L.random_translate(1),
        L.conv2d(3, 3, stride=2, padding="SAME"),
        L.batchnorm(),
        L.activation("relu"),
        L.max_pool(2, 1),
        L.avg_pool(2, 1, "SAME"),
        L.residual(L.conv2d(3, 1), L.layernorm(), L.activation("tanh")),
        L.flatten(),
        L.dense(6),
        L.dropout(0.3),
        L.softmax(),
        L.dense(3),
        in_shape=(7, 6, 2),
        dtype=dtype,
    )


def sequence_model():
    """Every recurrent layer, all states then the last."""
    return jaxbp.sequential(
        L.rnn(4, return_sequences=True),
        L.lstm(4, return_sequences=True),
        L.gru(3, return_sequences=False),
        L.dense(2),
        in_shape=(5, 2),
    )


@pytest.mark.parametrize("which", ["images", "sequences"])
def test_manual_path_calls_no_jax_differentiation(no_differentiation, which):
    """Tracing runs every line of the manual path's Python code, so tracing
    (make_jaxpr, no compilation) under the fixture is the check; jit and vmap
    trace the same code."""
    model = every_layer_model() if which == "images" else sequence_model()
    params, state = model.init_with_state(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (4, *model.in_shape))
    y = jnp.array([0, 1, 1, 0])
    run = {"state": state, "key": jax.random.key(2)}

    def manual(p, x, y, train=True):
        return jaxbp.loss_and_grad(model, p, x, y, train=train, **run)

    for train in (True, False):
        jax.make_jaxpr(functools.partial(manual, train=train))(params, x, y)
    xs, ys = x.reshape(2, 2, *x.shape[1:]), y.reshape(2, 2)
    jax.make_jaxpr(jax.vmap(manual, in_axes=(None, 0, 0)))(params, xs, ys)
    with pytest.raises(AssertionError, match="jax differentiation called"):
        jax.make_jaxpr(
            lambda p: jaxbp.loss_and_grad(model, p, x, y, backprop="autodiff", **run)
        )(params)


def test_every_layer_model_agrees_with_autodiff():
    model = every_layer_model("float64")
    params, state = model.init_with_state(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (6, 7, 6, 2), jnp.float64)
    y = jnp.array([0, 1, 2, 1, 0, 2])
    report = jaxbp.check_grads(model, params, x, y, state=state, key=jax.random.key(3))
    assert report.ok, str(report)


def test_textbook_option_gives_the_fast_layers_gradients():
    """``conv2d(textbook=True)`` and ``checkpointed(textbook=True)`` run the
    textbook backward forms inside a model: the same gradients as the fast ones."""
    x = jax.random.normal(jax.random.key(1), (4, 6, 6, 2), jnp.float64)
    y = jnp.array([0, 1, 2, 1])

    def model(textbook):
        return jaxbp.sequential(
            L.conv2d(3, 3, 2, "SAME", textbook=textbook),
            L.activation("tanh"),
            L.flatten(),
            L.checkpointed(L.dense(5), L.activation("tanh"), textbook=textbook),
            L.dense(3),
            in_shape=(6, 6, 2),
            dtype=jnp.float64,
        )

    params = model(False).init(jax.random.key(0))
    _, fast = jaxbp.loss_and_grad(model(False), params, x, y)
    _, textbook = jaxbp.loss_and_grad(model(True), params, x, y)
    chex.assert_trees_all_close(textbook, fast, rtol=1e-12, atol=1e-14)
