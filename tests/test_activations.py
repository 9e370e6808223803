"""Each activation's hand-written backward against jax.vjp and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ACTIVATION_NAMES
from hypothesis import given
from hypothesis import strategies as st

from jaxbp import activations

finite = st.floats(-30, 30, allow_nan=False, width=32)
# a fixed length keeps one compilation per activation and dtype
arrays = st.lists(finite, min_size=8, max_size=8)


def autodiff_backward(fn, z, dy):
    return jax.vjp(fn.forward, z)[1](dy)[0]


def manual_backward(fn, z, dy):
    return fn.backward(z, fn.forward(z), dy)


def manual_derivative(fn, z):
    """f'(z): the backward pass of dy = 1."""
    return manual_backward(fn, z, jnp.ones_like(z))


def autodiff_derivative(fn, z):
    return jax.vmap(jax.grad(fn.forward))(z)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@given(values=arrays, cotangents=arrays)
def test_backward_matches_jax_vjp(name, dtype, values, cotangents):
    fn = activations.get(name)
    z, dy = jnp.asarray(values, dtype), jnp.asarray(cotangents, dtype)
    want = autodiff_backward(fn, z, dy)
    rtol = 1e-12 if dtype == "float64" else 1e-6
    for got in (
        manual_backward(fn, z, dy),
        jax.jit(manual_backward, static_argnums=0)(fn, z, dy),
        jax.vmap(lambda zi, dyi: manual_backward(fn, zi, dyi))(z, dy),
    ):
        assert got.dtype == z.dtype
        # dz = dy * f'(z): the absolute floor (for the tails where f'(z) is
        # tiny) in units of the cotangents
        floor = rtol * max(1.0, float(np.max(np.abs(dy))))
        np.testing.assert_allclose(got, want, rtol=rtol, atol=floor)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
@given(values=arrays)
def test_derivative_matches_finite_differences(name, values):
    fn = activations.get(name)
    z = jnp.asarray(values, jnp.float64)
    if name in activations.KINKED:
        z = jnp.where(jnp.abs(z) < 1e-2, z + 0.05, z)
    h = 1e-3  # fourth-order centred stencil: truncation O(h⁴), rounding ~1e-13
    f = fn.forward
    fd = (-f(z + 2 * h) + 8 * f(z + h) - 8 * f(z - h) + f(z - 2 * h)) / (12 * h)
    # relative to each value, with an absolute floor for the saturated tails
    # (tanh'(9) = 6e-8 is below the stencil's rounding of ~1e-13 / 1e-6
    # relative). The floor is the stencil's rounding: each f(z ± kh) is off by
    # up to ½|z|·4ε where f = ½ z (1 + tanh u) cancels near −1 (the GELUs' left
    # tail; XLA's tanh is good to a few ulp), and the stencil sums 18 of them
    # over 12h: 3.6e-12 at |z| = 10.
    atol = 18 * 0.5 * float(jnp.max(jnp.abs(z)) + 1) * 4.4e-16 / (12 * h)
    np.testing.assert_allclose(
        manual_derivative(fn, z), fd, rtol=1e-6, atol=max(atol, 1e-12)
    )


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_kink_follows_the_usual_rule_and_jax_grad(name):
    fn = activations.get(name)
    zero = jnp.zeros((1,))
    got = manual_derivative(fn, zero)
    assert got == autodiff_derivative(fn, zero)
    expected_at_zero = {
        "relu": 0.0,
        "leaky_relu": activations.LEAKY_RELU_SLOPE,
        "elu": activations.ELU_ALPHA,
        "identity": 1.0,
        "sigmoid": 0.25,
        "tanh": 1.0,
        "softplus": 0.5,
        "gelu": 0.5,
        "silu": 0.5,
        "gelu_tanh": 0.5,
    }[name]
    np.testing.assert_allclose(got, expected_at_zero)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_finite_for_large_inputs(name):
    fn = activations.get(name)
    z = jnp.array([-1e4, -100.0, 100.0, 1e4])
    assert jnp.all(jnp.isfinite(fn.forward(z)))
    assert jnp.all(jnp.isfinite(manual_derivative(fn, z)))
    assert jnp.all(jnp.isfinite(autodiff_derivative(fn, z)))


def test_values_against_reference_formulas():
    z = jnp.linspace(-4, 4, 41, dtype=jnp.float64)
    zn = np.asarray(z)
    from scipy.special import erf

    want = {
        "identity": zn,
        "sigmoid": 1 / (1 + np.exp(-zn)),
        "tanh": np.tanh(zn),
        "relu": np.maximum(zn, 0),
        "leaky_relu": np.where(zn > 0, zn, 0.01 * zn),
        "elu": np.where(zn > 0, zn, np.exp(zn) - 1),
        "softplus": np.log1p(np.exp(zn)),
        "gelu": zn * 0.5 * (1 + erf(zn / np.sqrt(2))),
        "silu": zn / (1 + np.exp(-zn)),
        "gelu_tanh": 0.5
        * zn
        * (1 + np.tanh(np.sqrt(2 / np.pi) * (zn + 0.044715 * zn**3))),
    }
    for name, expected in want.items():
        np.testing.assert_allclose(
            activations.get(name).forward(z), expected, rtol=1e-12, atol=1e-14
        )


def test_unknown_activation_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown activation 'sigmod'.*sigmoid.*relu"):
        activations.get("sigmod")


def test_gelu_tanh_is_close_to_the_exact_gelu():
    """The tanh form approximates z Φ(z): within 1e-3 everywhere, and the two
    meet in both tails (to 1e-8 beyond |z| = 6)."""
    z = jnp.linspace(-8, 8, 1601, dtype=jnp.float64)
    exact, approx = activations.get("gelu"), activations.get("gelu_tanh")
    gap = np.abs(np.asarray(approx.forward(z) - exact.forward(z)))
    assert gap.max() < 1e-3
    assert gap[np.abs(np.asarray(z)) > 6].max() < 1e-8
    slope_gap = manual_derivative(approx, z) - manual_derivative(exact, z)
    assert float(jnp.max(jnp.abs(slope_gap))) < 1e-2
