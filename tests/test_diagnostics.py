"""Gradient-flow diagnostics: per-layer records equal what autodiff says, show the
vanishing gradient of deep sigmoid nets, and work under jit and vmap."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_trees_rel_close

import jaxbp
from jaxbp import layers as L
from jaxbp.diagnostics import LayerFlow, flow_report, format_flow, gradient_flow


def problem(n_in=6, n=16, classes=3, seed=1):
    x = jax.random.normal(jax.random.key(seed), (n, n_in), jnp.float64)
    return x, jnp.arange(n) % classes


def autodiff_deltas(model, params, x, y, *, loss, state, key, train):
    """‖dL/d(output of layer l)‖ by jax.grad with respect to zero probes added
    to every layer's output."""
    x, target, loss_fn, state = jaxbp.backprop.prepare(model, params, x, y, loss, state)
    keys = L.split_key(key, len(model.layers))

    def outputs(probes):
        h = x
        for layer, p, s, k, probe in zip(model.layers, params, state, keys, probes):
            h = layer.forward(p, s, h, key=k, train=train)[0] + probe
        return loss_fn.value(h, target)

    shapes = []
    h = x
    for layer, p, s, k in zip(model.layers, params, state, keys):
        h = layer.forward(p, s, h, key=k, train=train)[0]
        shapes.append(h.shape)
    probes = [jnp.zeros(s, x.dtype) for s in shapes]
    return [jnp.linalg.norm(g.ravel()) for g in jax.grad(outputs)(probes)]


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_records_equal_autodiff(which):
    if which == "mlp":
        model = jaxbp.mlp([6, 5, 5, 3], "tanh", dtype="float64", batchnorm=True)
        x, y = problem()
    else:
        model = jaxbp.model.cnn((6, 6, 1), 3, channels=(2,), hidden=4, dtype="float64")
        x = jax.random.normal(jax.random.key(1), (8, 6, 6, 1), jnp.float64)
        y = jnp.arange(8) % 3
    params, state = model.init_with_state(jax.random.key(0))
    run = {"loss": "cross_entropy", "state": state, "key": jax.random.key(5)}
    records = jax.jit(lambda p: gradient_flow(model, p, x, y, **run))(params)
    assert [r.index for r in records] == list(range(len(model.layers)))
    assert tuple(r.name for r in records) == model.layer_names

    deltas, (_, grads) = jax.jit(
        lambda p: (
            autodiff_deltas(model, p, x, y, train=True, **run),
            jaxbp.loss_and_grad(model, p, x, y, backprop="autodiff", **run),
        )
    )(params)
    assert_trees_rel_close([r.delta_norm for r in records], deltas, 1e-10)

    def norm(leaves):
        return np.sqrt(sum(np.sum(np.square(a)) for a in leaves)) if leaves else None

    def expected(g):
        weights = norm([g["w"]]) if isinstance(g, dict) and "w" in g else None
        biases = norm([g["b"]]) if isinstance(g, dict) and "b" in g else None
        return weights, biases, norm(jax.tree.leaves(g))

    got = [(r.weight_grad_norm, r.bias_grad_norm, r.param_grad_norm) for r in records]
    want = [expected(g) for g in grads]
    # (None where a layer has no such parameters; tiny entries such as the bias
    # before batch norm, whose gradient is 0 up to rounding, are compared on the
    # scale of the largest)
    assert_trees_rel_close(got, want, 1e-10)


def test_deep_sigmoid_net_learns_slower_in_early_layers():
    """Nielsen ch. 5: in a deep sigmoid net ‖∂C/∂b‖ shrinks towards the input."""
    model = jaxbp.mlp([6, 20, 20, 20, 20, 3], "sigmoid", dtype="float64")
    params = model.init(jax.random.key(0))
    x, y = problem(n=64)
    records = jax.jit(lambda p: gradient_flow(model, p, x, y))(params)
    speeds = [float(r.bias_grad_norm) for r in records if r.name == "dense"][:-1]
    assert all(a < b for a, b in itertools.pairwise(speeds)), speeds
    sigmoid = [r for r in records if r.name == "sigmoid"]
    assert all(r.saturated is not None and r.dead is None for r in sigmoid)
    text = format_flow(records)
    assert "0.dense" in text and "‖db‖" in text


def test_saturation_and_dead_units():
    x = jnp.concatenate([jnp.full((4, 2), 10.0), jnp.full((4, 2), -10.0)], axis=1)
    y = jnp.zeros((4,), jnp.int32)
    model = jaxbp.sequential(
        L.activation("tanh"),
        L.activation("sigmoid"),
        L.dense(3),
        L.activation("relu"),
        L.dense(2),
        in_shape=(4,),
    )
    params = model.init(jax.random.key(0))
    # relu of a negative pre-activation: all dead
    params = (
        *params[:2],
        {"w": params[2]["w"], "b": -100 + params[2]["b"]},
        *params[3:],
    )
    records = jax.jit(lambda p: gradient_flow(model, p, x, y))(params)
    np.testing.assert_allclose(records[0].saturated, 1.0)  # |tanh(±10)| > 0.99
    np.testing.assert_allclose(records[1].saturated, 0.0)  # σ(±1) is in (0.01, 0.99)
    np.testing.assert_allclose(records[3].dead, 1.0)
    assert records[0].dead is None and records[3].saturated is None
    assert records[2].saturated is None and records[2].dead is None
    np.testing.assert_allclose(records[0].mean, 0.0, atol=1e-6)
    np.testing.assert_allclose(records[0].std, np.tanh(10.0), rtol=1e-6)
    # dead ReLUs pass no gradient back: everything below them gets none
    np.testing.assert_allclose(records[2].weight_grad_norm, 0.0)
    np.testing.assert_allclose(records[0].delta_norm, 0.0)


def test_vmap_over_seeds_and_records_are_pytrees():
    model = jaxbp.mlp([6, 8, 8, 3], "relu")
    x, y = problem()
    x = x.astype(jnp.float32)
    seeds = jax.random.split(jax.random.key(0), 4)
    flows = jax.jit(jax.vmap(lambda k: gradient_flow(model, model.init(k), x, y)))(
        seeds
    )
    assert all(isinstance(r, LayerFlow) for r in flows)
    for r in flows:
        assert r.delta_norm.shape == (4,) and r.delta_norm.dtype == jnp.float32
        assert r.mean.shape == (4,)
    one = jax.jit(lambda k: gradient_flow(model, model.init(k), x, y))(seeds[1])
    np.testing.assert_allclose(
        flows[2].weight_grad_norm[1], one[2].weight_grad_norm, rtol=1e-5
    )
    np.testing.assert_allclose(flows[1].dead[1], one[1].dead)
    leaves, treedef = jax.tree.flatten(one)
    assert all(isinstance(a, jax.Array) for a in leaves)
    assert jax.tree.unflatten(treedef, leaves)[1].name == "relu"


def test_gradient_flow_calls_no_jax_differentiation(monkeypatch):
    for name in ("grad", "value_and_grad", "vjp", "jvp", "linearize"):
        monkeypatch.setattr(jax, name, None)
    from jax._src.interpreters import ad

    for name in ("jvp", "linearize", "backward_pass"):
        monkeypatch.setattr(ad, name, None)
    model = jaxbp.mlp([6, 5, 3], "tanh", batchnorm=True, dropout=0.2, residual=True)
    params, state = model.init_with_state(jax.random.key(0))
    x, y = problem()
    jax.make_jaxpr(
        lambda p: gradient_flow(model, p, x, y, state=state, key=jax.random.key(1))
    )(params)


def test_flow_report_is_a_table_like_check_grads():
    """One row a layer with the records' values, a rule under the header (as
    ``check_grads``' table), and the first/last ‖dW‖ ratio as the summary."""
    model = jaxbp.mlp([6, 20, 20, 20, 3], "sigmoid", dtype="float64")
    params = model.init(jax.random.key(0))
    x, y = problem(n=64)
    records = gradient_flow(model, params, x, y)
    report = flow_report(records)
    lines = str(report).splitlines()
    header, rule, *rows, summary = lines
    assert header.split() == [
        *("layer", "‖δ‖", "‖dW‖", "‖db‖", "‖dθ‖", "mean", "std", "saturated", "dead")
    ]
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(rule.split()) == 9 and set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == len(records) == len(model.layers)
    for row, r in zip(rows, records):
        cells = row.split()
        assert cells[0] == f"{r.index}.{r.name}"
        if r.weight_grad_norm is None:
            assert cells[2] == "-"
        else:
            assert float(cells[2]) == pytest.approx(float(r.weight_grad_norm), rel=1e-2)
        assert float(cells[1]) == pytest.approx(float(r.delta_norm), rel=1e-2)
        assert (cells[8] == "-") == (r.dead is None)
    dws = [float(r.weight_grad_norm) for r in records if r.name == "dense"]
    assert report.first_last_ratio == pytest.approx(dws[0] / dws[-1])
    assert report.first_last_ratio < 1  # deep sigmoid: vanishing
    assert f"{dws[0] / dws[-1]:.3g}" in summary and "first/last" in summary
    assert format_flow(records) == str(report)


def test_flow_report_without_two_weighted_layers_has_no_ratio():
    model = jaxbp.sequential(L.dense(3), L.activation("relu"), in_shape=(6,))
    params = model.init(jax.random.key(0))
    x, y = problem()
    report = flow_report(gradient_flow(model, params, x, y))
    assert report.first_last_ratio is None
    assert str(report).splitlines()[-1] == "2 layers"
