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
