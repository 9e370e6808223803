"""jaxbp.recipes: optimizers, models, losses and targets by name."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxbp import data, optim, recipes


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


@pytest.fixture(scope="module")
def digit_images():
    return data.load("digits", images=True)


def updates_of(tx, steps=3):
    """The updates ``tx`` makes over a few steps on a small fixed problem."""
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.ones(3)}
    state = tx.init(params)
    out = []
    for i in range(steps):
        grads = jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)), params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        out.append(updates)
    return out


@pytest.mark.parametrize("name", recipes.OPTIMIZERS)
@pytest.mark.parametrize("schedule", recipes.SCHEDULES)
def test_optimizer_same_from_jaxbp_and_optax(name, schedule):
    kwargs = {"learning_rate": 0.1, "schedule": schedule, "steps": 5}
    if name == "adamw":
        kwargs["weight_decay"] = 0.5
    ours = updates_of(recipes.optimizer(name, impl="jaxbp", **kwargs))
    theirs = updates_of(recipes.optimizer(name, impl="optax", **kwargs))
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_optimizer_names_mean_what_they_say():
    expected = {
        "momentum": optax.sgd(0.1, momentum=0.9),
        "nesterov": optax.sgd(0.1, momentum=0.9, nesterov=True),
        "adamw": optax.adamw(0.1, weight_decay=0.5),
        "rmsprop": optax.rmsprop(0.1),
    }
    for name, tx in expected.items():
        decay = 0.5 if name == "adamw" else 0.0
        got = recipes.optimizer(name, learning_rate=0.1, weight_decay=decay)
        chex.assert_trees_all_close(updates_of(got), updates_of(tx), rtol=1e-6)
    cosine = recipes.optimizer("sgd", learning_rate=0.1, schedule="cosine", steps=3)
    chex.assert_trees_all_close(
        updates_of(cosine), updates_of(optim.sgd(optim.cosine_decay_schedule(0.1, 3)))
    )


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "adam", "weight_decay": 0.1}, "weight_decay"),
        ({"name": "sgd", "weight_decay": 1e-4}, "adamw"),
        ({"name": "lbfgs"}, "optimizer"),
        ({"name": "adam", "impl": "torch"}, "impl"),
        ({"name": "adam", "schedule": "linear"}, "schedule"),
        ({"name": "adam", "schedule": "cosine"}, "steps"),
        ({"name": "adam", "learning_rate": 0.0}, "learning_rate"),
        ({"name": "adamw", "weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_optimizer_rejects_bad_arguments(kwargs, fragment):
    kwargs = {"learning_rate": 1e-3, **kwargs}
    name = kwargs.pop("name")
    with pytest.raises(ValueError, match=fragment):
        recipes.optimizer(name, **kwargs)


def test_default_loss_and_targets(digits):
    sine = data.load("sine", n=50)
    assert recipes.default_loss(digits) == "cross_entropy"
    assert recipes.default_loss(sine) == "mse"
    onehot = recipes.targets(digits, digits.val, "mse")
    assert onehot.shape == (len(digits.val.y), 10) and onehot.dtype == np.float32
    np.testing.assert_array_equal(onehot.argmax(axis=1), digits.val.y)
    assert recipes.targets(digits, digits.val, "cross_entropy") is digits.val.y
    assert recipes.targets(sine, sine.val, "mse") is sine.val.y


def test_output_size(digits):
    moons, sine = data.load("moons", n=50), data.load("sine", n=50)
    assert recipes.output_size(digits, "cross_entropy") == 10
    assert recipes.output_size(digits, "hinge") == 10
    assert recipes.output_size(moons, "hinge") == 1
    assert recipes.output_size(moons, "binary_cross_entropy") == 1
    assert recipes.output_size(sine, "mse") == 1
    with pytest.raises(ValueError, match="2 classes"):
        recipes.output_size(digits, "binary_cross_entropy")
    with pytest.raises(ValueError, match="regression"):
        recipes.output_size(sine, "cross_entropy")


def test_total_steps():
    assert recipes.total_steps(1293, 32, 40) == 40 * 40
    assert recipes.total_steps(1293, None, 7) == 7


def test_mlp_preset_built_for_the_dataset(digits):
    model = recipes.model("mlp", digits)
    params = model.init(jax.random.key(0))
    weights = [p["w"].shape for p in params if isinstance(p, dict) and "w" in p]
    assert weights == [(64, 256), (256, 256), (256, 10)]
    assert model.apply(params, digits.test.x[:3]).shape == (3, 10)
    names = [layer.name for layer in model.layers]
    assert names.count("dropout") == 3  # input dropout and after each hidden layer


def test_cnn_preset_and_options(digit_images):
    model = recipes.model("cnn", digit_images, channels=(4, 8), hidden=(16,))
    params, state = model.init_with_state(jax.random.key(0))
    assert model.apply(params, digit_images.test.x[:2], state=state).shape == (2, 10)
    assert "batchnorm" in [layer.name for layer in model.layers]
    assert "batchnorm" not in [
        layer.name
        for layer in recipes.model("cnn", digit_images, batchnorm=False).layers
    ]


@pytest.mark.parametrize(
    ("name", "images", "kwargs", "fragment"),
    [
        ("cnn", False, {}, "image data"),
        ("mlp", False, {"channels": (4,)}, "channels"),
        ("cnn", True, {"residual": True}, "residual"),
        ("cnn", True, {"input_dropout": 0.1}, "input_dropout"),
        ("mlp", False, {"init_std": 0.1}, "init_std"),
        ("mlp", False, {"init": "normal", "init_std": -1.0}, "init_std"),
        ("rnn", False, {}, "model"),
        ("mlp", False, {"loss": "binary_cross_entropy"}, "2 classes"),
    ],
)
def test_model_rejects_bad_arguments(
    digits, digit_images, name, images, kwargs, fragment
):
    with pytest.raises(ValueError, match=fragment):
        recipes.model(name, digit_images if images else digits, **kwargs)


def test_init_std_scales_the_normal_init(digits):
    small = recipes.model("mlp", digits, hidden=(8,), init="normal", init_std=0.01)
    w = small.init(jax.random.key(0))
    std = float(np.std(np.concatenate([np.ravel(p["w"]) for p in w if "w" in p])))
    assert 0.005 < std < 0.02


@pytest.mark.parametrize("name", ["spirals", "blobs", "moons"])
def test_mlp_dropout_preset_is_digits_only(digits, name):
    other = data.load(name)
    assert recipes.preset("mlp", name)["dropout"] == 0.0
    assert recipes.preset("mlp", name)["input_dropout"] == 0.0
    assert recipes.preset("mlp", "digits") == recipes.PRESETS["mlp"]
    assert recipes.preset("cnn", name) == recipes.PRESETS["cnn"]
    names = [layer.name for layer in recipes.model("mlp", other).layers]
    assert "dropout" not in names
    dropout = recipes.model("mlp", other, dropout=0.1).layers
    assert [layer.name for layer in dropout].count("dropout") == 2  # as asked


def _updates(tx, params, steps):
    """The parameters after ``steps`` updates with zero gradients."""
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    for _ in range(steps):
        updates, state = tx.update(zeros, state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
    return params


@pytest.mark.parametrize("impl", recipes.IMPLS)
def test_weight_decay_on_matrices_only(impl):
    params = {"w": jnp.ones((2, 3)), "b": jnp.ones(3), "table": jnp.ones((4, 2))}
    tx = recipes.optimizer(
        "adamw",
        impl=impl,
        learning_rate=0.1,
        weight_decay=0.5,
        decay_matrices_only=True,
    )
    after = _updates(tx, params, 3)
    np.testing.assert_array_equal(after["b"], params["b"])
    assert float(after["w"][0, 0]) == pytest.approx((1 - 0.05) ** 3, rel=1e-6)
    assert float(after["table"][0, 0]) == float(after["w"][0, 0])
    everything = _updates(
        recipes.optimizer("adamw", impl=impl, learning_rate=0.1, weight_decay=0.5),
        params,
        3,
    )
    assert float(everything["b"][0]) == float(everything["w"][0, 0]) < 1


def test_warmup_cosine_floor_and_beta2_are_the_same_in_both_impls():
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3)}
    settings = {
        "learning_rate": 0.01,
        "schedule": "cosine",
        "steps": 30,
        "warmup": 5,
        "min_learning_rate": 1e-3,
        "beta2": 0.99,
        "weight_decay": 0.1,
    }
    txs = [recipes.optimizer("adamw", impl=i, **settings) for i in recipes.IMPLS]
    grads = {"w": jnp.full((2, 3), 0.5)}
    states = [tx.init(params) for tx in txs]
    for step in range(30):
        steps = [tx.update(grads, s, params) for tx, s in zip(txs, states)]
        (a, states[0]), (b, states[1]) = steps
        np.testing.assert_allclose(a["w"], b["w"], rtol=1e-6, err_msg=str(step))
        if step == 0:  # the warm-up starts from a learning rate of 0
            np.testing.assert_array_equal(a["w"], 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "sgd", "beta2": 0.99}, "beta2"),
        ({"schedule": "cosine", "steps": 10, "warmup": 10}, "warmup"),
        ({"min_learning_rate": 0.5}, "min_learning_rate"),
        ({"warmup": -1}, "warmup"),
    ],
)
def test_schedule_and_beta2_mistakes(kwargs, message):
    kwargs = {"name": "adam", **kwargs}
    with pytest.raises(ValueError, match=message):
        recipes.optimizer(kwargs.pop("name"), learning_rate=0.1, **kwargs)
