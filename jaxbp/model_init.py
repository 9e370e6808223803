"""A model's initial parameters and state, compiled (``Model.init_with_state``).

Drawing each layer's weights op by op would compile every op separately, so
initialisation is compiled. :func:`two_programs` is what models use: the
random bits in one program compiled fast, the weights in another
(``jaxbp.draws``), bit for bit :func:`one_program`, the plain ``jax.jit`` of
the layers' inits, which stays as the reference.
"""

from __future__ import annotations

import functools

import jax

from jaxbp import draws, executable_cache
from jaxbp.compilation import jit_fast
from jaxbp.layers import split_key


def layers_init(model, key):
    """``(params, state)``: each layer's ``init`` with its own key, in order,
    every layer's input shape the previous one's output shape."""
    params, state, shape = [], [], model.in_shape
    for layer, k in zip(model.layers, split_key(key, len(model.layers))):
        shape, p, s = layer.init(k, shape, model.dtype)
        params.append(p)
        state.append(s)
    return tuple(params), tuple(state)


one_program = jax.jit(layers_init, static_argnums=0)
_state_only = jax.jit(
    lambda model: layers_init(model, jax.random.key(0))[1], static_argnums=0
)


def two_programs(model, key):
    """:func:`layers_init` as ``jaxbp.draws.two_stage``'s two programs (traced
    inline when ``key`` is a tracer: inside ``jit`` or ``vmap``)."""
    if isinstance(key, jax.core.Tracer):
        return layers_init(model, key)
    bits_of, init_from_bits = _programs(model)
    return init_from_bits(key, bits_of(key))


@functools.lru_cache(maxsize=128)
def _programs(model):
    """The model's ``(bits_of, init_from_bits)``, jitted: the first with XLA's
    fast-compile options (integer work only, exact: ``jit_fast``), the second
    with the defaults."""
    bits_of, init_from_bits = draws.two_stage(functools.partial(layers_init, model))
    return jit_fast(bits_of), executable_cache.jit(init_from_bits)


@functools.lru_cache(maxsize=128)
def initial_state(model):
    """A model's initial state, computed once (by a compiled program in which
    the unused random parameters are dead code), concretely even in a trace.

    A model without state (every layer's is ``()``, as in a plain MLP) needs no
    program: tracing its init abstractly gives the empty structure itself.
    """
    shapes = jax.eval_shape(lambda: layers_init(model, jax.random.key(0))[1])
    if not jax.tree.leaves(shapes):
        return shapes
    with jax.ensure_compile_time_eval():
        return _state_only(model)
