"""Evaluation in batches runs in bounded memory: the compiled evaluation's
working memory (XLA's memory analysis) does not grow with the number of
examples beyond the outputs themselves."""

import jax
import jax.numpy as jnp
import pytest

import jaxbp
from jaxbp.train.evaluate import metrics


def _memory(model, n, batch_size):
    params = model.init(jax.random.key(0))
    x = jax.ShapeDtypeStruct((n, *model.in_shape), jnp.float32)
    t = jax.ShapeDtypeStruct((n, *model.out_shape), jnp.float32)

    def evaluate(p, s, x, t):
        return metrics(model, "cross_entropy", p, s, x, t, batch_size)

    compiled = jax.jit(evaluate).lower(params, model.init_state(), x, t).compile()
    return compiled.memory_analysis()


@pytest.mark.parametrize("batch_size", [1000, 999])  # dividing n or not
def test_evaluation_memory_does_not_grow_with_the_examples(batch_size):
    model = jaxbp.mlp([784, 256, 10])
    small, large = (_memory(model, n, batch_size) for n in (4000, 16000))
    if small is None:
        pytest.skip("this backend gives no memory analysis")
    inputs = large.argument_size_in_bytes - small.argument_size_in_bytes
    outputs = 12000 * 10 * 4  # the float32 outputs of the extra examples
    grown = large.temp_size_in_bytes - small.temp_size_in_bytes
    assert grown <= 2 * outputs < inputs / 10
