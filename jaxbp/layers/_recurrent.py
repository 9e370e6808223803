"""What the recurrent layers share: argument checks and the map between a
layer's output and dL/dh_t (RNN, LSTM, GRU), torch's initialisation (LSTM, GRU)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxbp import draws
from jaxbp.layers._protocol import check_in_shape


def check_hidden(name: str, hidden) -> None:
    """Raise a ValueError unless ``hidden`` is a positive integer."""
    if not (isinstance(hidden, int) and not isinstance(hidden, bool) and hidden > 0):
        raise ValueError(
            f"{name} hidden size must be a positive integer; got {hidden!r}"
        )


def check_sequence_shape(name: str, in_shape) -> None:
    """Raise a ValueError unless ``in_shape`` is (time ≥ 1, features)."""
    check_in_shape(name, in_shape, 2, "(time, features)")
    if in_shape[0] < 1:
        raise ValueError(f"{name} needs at least one time step; got {in_shape}")


def torch_uniform_weights(key, hidden: int, n_gates: int, features: int, dtype):
    """W_ih (G·H, D) and W_hh (G·H, H) from U(−1/√H, 1/√H), torch's recurrent init."""
    bound = 1.0 / jnp.sqrt(hidden)
    k_ih, k_hh = jax.random.split(key)
    w_ih = draws.uniform(k_ih, (n_gates * hidden, features), dtype, -bound, bound)
    w_hh = draws.uniform(k_hh, (n_gates * hidden, hidden), dtype, -bound, bound)
    return w_ih, w_hh


def output_of(hs, return_sequences: bool):
    """The layer's output from the states hs (T, B, H): (B, T, H) or h_T (B, H)."""
    return jnp.swapaxes(hs, 0, 1) if return_sequences else hs[-1]


def state_grads_of(dy, n_steps: int, return_sequences: bool):
    """dhs (T, B, H) = ∂L/∂h_t from the output: dy itself, or only dh_T = dy."""
    if return_sequences:
        return jnp.swapaxes(dy, 0, 1)
    return jnp.zeros((n_steps, *dy.shape), dy.dtype).at[-1].set(dy)
