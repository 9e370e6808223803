"""Shared test configuration: float64 available everywhere, hypothesis profiles."""

import jax
import pytest
from hypothesis import HealthCheck, settings

# float64 tests need x64; every jaxbp function takes its dtype from its inputs,
# so float32 tests stay float32 with it on.
jax.config.update("jax_enable_x64", True)

settings.register_profile(
    "default",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")


@pytest.fixture
def key():
    return jax.random.key(0)


# JAX's differentiation entry points; the manual path must call none of them.
DIFFERENTIATION = (
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "linearize",
    "jacrev",
    "jacfwd",
    "hessian",
)


@pytest.fixture
def no_differentiation(monkeypatch):
    """Replace JAX's differentiation entry points (public and internal) with raisers."""

    def forbidden(name):
        def raiser(*args, **kwargs):
            raise AssertionError(f"jax differentiation called: {name}")

        return raiser

    for name in DIFFERENTIATION:
        monkeypatch.setattr(jax, name, forbidden(f"jax.{name}"))
    from jax._src.interpreters import ad

    for name in ("jvp", "linearize", "backward_pass"):
        monkeypatch.setattr(ad, name, forbidden(f"ad.{name}"))
