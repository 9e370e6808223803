"""Shared test configuration: fast XLA compilation, float64 available everywhere,
hypothesis profiles."""

import os

from jaxbp.compilation import fast_compile_xla_flags

# Most of the suite's time is XLA compiling small programs (every hypothesis draw
# is a new shape); XLA's fast-compile options (jaxbp.compilation.FAST_COMPILE:
# no LLVM optimization, the classic loop emitters) make that 2-3x faster. They
# compute the same operations, equal to rounding (an elementwise function may
# differ in the last bit), and every comparison in the suite is between results
# computed under the same options or within a tolerance. They must be in XLA_FLAGS before JAX starts
# its backend; the subprocesses the tests start inherit them.
# JAXBP_TEST_XLA_DEFAULTS=1 runs the suite with XLA's default options instead.
if os.environ.get("JAXBP_TEST_XLA_DEFAULTS") != "1":
    # importing jaxbp imports jax but starts no backend: this is still in time
    os.environ["XLA_FLAGS"] = fast_compile_xla_flags(os.environ.get("XLA_FLAGS", ""))

# No persistent compilation cache in the test processes or the subprocesses
# they start (jaxbp's CLI switches it on for users): every program is compiled
# where it is used, so no test depends on what an earlier one left on disk or
# switched on in its worker. tests/test_compilation.py turns it on explicitly.
os.environ.setdefault("JAXBP_COMPILATION_CACHE", "0")

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


@pytest.fixture(scope="module")
def tree():
    """A tree to checkpoint: params, optimizer states of both libraries, keys,
    odd dtypes (``checkpoint_trees.example_tree``)."""
    from checkpoint_trees import example_tree

    return example_tree()


@pytest.fixture(scope="module", autouse=True)
def free_compiled_programs():
    """After each test module, JAX's caches of compiled programs are dropped.

    A worker runs hundreds of modules and compiles thousands of programs; XLA
    keeps every executable (its machine code mapped into the process) while
    the jitted function that made it is cached, and a long-lived worker
    approaching the kernel's limit on memory mappings (vm.max_map_count) can
    crash inside XLA's compiler. No test relies on another module's programs.
    """
    yield
    import gc

    jax.clear_caches()
    gc.collect()
