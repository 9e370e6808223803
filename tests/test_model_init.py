"""jaxbp.model_init: initialisation in two programs equals the one-program reference."""

import jax
import numpy as np
from helpers import python_child, users_xla_flags

from jaxbp import layers as L
from jaxbp import model as M
from jaxbp import model_init

#: One small model per kind of layer that draws weights (dense, conv, batch
#: norm, embedding, the recurrent layers, a GPT), built by name in a child.
MODELS = """
from jaxbp import layers as L, model as M
def models(dtype):
    return {
        "mlp": M.mlp([5, 7, 3], dtype=dtype),
        "cnn": M.cnn((8, 8, 1), 3, channels=(2,), hidden=4, batchnorm=True,
                     dtype=dtype),
        "rnn": M.sequential(L.embedding(9, 4), L.rnn(5), in_shape=(3,), dtype=dtype),
        "lstm": M.sequential(L.embedding(9, 4), L.lstm(5), in_shape=(3,), dtype=dtype),
        "gru": M.sequential(L.embedding(9, 4), L.gru(5), in_shape=(3,), dtype=dtype),
        "gpt": M.gpt(9, block_size=4, n_layer=1, n_head=2, n_embd=8, dtype=dtype),
    }
"""

CHECK = (
    MODELS
    + """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
for dtype in ("float32", "float64"):
    for name, model in models(dtype).items():
        for seed in (0, 1234567):
            key = jax.random.key(seed)
            got = jax.tree.leaves(model.init_with_state(key))
            want = jax.tree.leaves(M.reference_init(model, key))
            same = len(got) == len(want) and all(
                a.dtype == b.dtype and np.asarray(a).tobytes() == np.asarray(b).tobytes()
                for a, b in zip(got, want)
            )
            print(name, dtype, seed, "same" if same else "DIFFERENT")
"""
)


def test_two_programs_equal_the_reference_bit_for_bit_under_xla_defaults():
    """The claim is about XLA's default options (the suite compiles with its
    fast-compile options), so it is checked in a process that uses them."""
    result = python_child(CHECK, XLA_FLAGS=users_xla_flags())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert sum(line.endswith(" same") for line in lines) == 6 * 2 * 2, result.stdout


def test_inside_vmap_init_is_traced_as_one_function():
    """Equal up to rounding: the suite compiles without LLVM's optimisations,
    under which a batched erf⁻¹ may round differently in the last bit."""
    model = M.mlp([4, 6, 2])
    keys = jax.random.split(jax.random.key(0), 3)
    stacked = jax.vmap(model.init)(keys)
    for i in range(3):
        one = model.init(keys[i])
        for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(one)):
            np.testing.assert_allclose(a[i], b, rtol=1e-6)


def test_layer_inits_are_called_in_order_with_each_output_shape():
    model = M.sequential(L.dense(3), L.activation("tanh"), L.dense(2), in_shape=(5,))
    params, state = model_init.layers_init(model, jax.random.key(0))
    assert params[0]["w"].shape == (5, 3) and params[2]["w"].shape == (3, 2)
    assert state == ((), (), ())
