"""benchmarks/problems.py: the timed problems and their FLOP counts."""

import chex
import jax
import jax.numpy as jnp

import jaxbp
from benchmarks import problems


def test_dense_flops_are_counted_by_hand():
    forward, gradient = problems.dense_sizes_flops([4, 8, 2], batch=3)
    assert forward == 2 * 3 * (4 * 8 + 8 * 2)
    # backward: dW for both layers, dx only for the second
    assert gradient == forward + 2 * 3 * (4 * 8 + 8 * 2) + 2 * 3 * (8 * 2)


def test_mlp_problem_is_float32_whatever_x64():
    model, params, x, y = problems.mlp_problem((5, 4, 3), 6)
    assert x.shape == (6, 5) and x.dtype == jnp.float32
    assert y.shape == (6,) and int(y.max()) < 3
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(params))
    assert model.apply(params, x).shape == (6, 3)


def test_the_contenders_compute_the_same_gradient():
    model, params, x, y = problems.mlp_problem((5, 4, 3), 6)
    fns = problems.gradient_functions(model)
    value, grads = fns["manual"](params, x, y)
    for name in ("autodiff", "reference"):
        other_value, other_grads = fns[name](params, x, y)
        chex.assert_trees_all_close(other_value, value, rtol=1e-5)
        chex.assert_trees_all_close(other_grads, grads, rtol=1e-4, atol=1e-6)
    chex.assert_trees_all_close(fns["forward"](params, x, y), value, rtol=1e-6)


def test_sgd_step_moves_against_the_gradient():
    model, params, x, y = problems.mlp_problem((5, 4, 3), 6)
    new, value = problems.sgd_step(model, learning_rate=0.5)(params, x, y)
    expected_value, grads = jaxbp.loss_and_grad(model, params, x, y)
    chex.assert_trees_all_close(value, expected_value)
    expected = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    chex.assert_trees_all_close(new, expected)


def test_matmul_problem_and_max_difference():
    matmul, a, b, flops = problems.matmul_problem(8)
    assert flops == 2 * 8**3
    chex.assert_trees_all_close(matmul(a, b), a @ b, rtol=1e-5)
    z = jnp.zeros(3, jnp.float32)
    assert problems.max_difference({"a": z}, {"a": z.at[1].set(-0.25)}) == 0.25
    assert problems.size_name((4, 5), 3) == "4-5 B3"
