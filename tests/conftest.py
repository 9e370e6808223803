"""Shared test configuration: fast XLA compilation, float64 available everywhere,
hypothesis profiles."""

import os
import shutil
import tempfile

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

# No compilation cache in the subprocesses the tests start (jaxbp's CLI switches
# it on for users), so no test depends on what an earlier one left on disk;
# tests/test_compilation.py turns it on explicitly.
os.environ.setdefault("JAXBP_COMPILATION_CACHE", "0")

import jax
import pytest
from hypothesis import HealthCheck, settings

# float64 tests need x64; every jaxbp function takes its dtype from its inputs,
# so float32 tests stay float32 with it on.
jax.config.update("jax_enable_x64", True)

# The test processes (both xdist workers) share one JAX persistent compilation
# cache in a directory made fresh for this run and deleted after it: a program
# that one test compiled is loaded, not compiled again, by a later test that
# builds the same one (the same model in another test is a new trace, which
# JAX's in-memory caches do not recognise, but the same program). Nothing is
# kept between runs. JAXBP_TEST_SHARED_CACHE=0 compiles everything where used.
SHARED_CACHE = "JAXBP_TEST_CACHE_DIR"
if os.environ.get("JAXBP_TEST_SHARED_CACHE", "1") != "0":
    if SHARED_CACHE not in os.environ:  # the first process: xdist's controller
        os.environ[SHARED_CACHE] = tempfile.mkdtemp(prefix="jaxbp-tests-xla-")
    jax.config.update("jax_compilation_cache_dir", os.environ[SHARED_CACHE])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput") and SHARED_CACHE in os.environ:
        shutil.rmtree(os.environ[SHARED_CACHE], ignore_errors=True)


@pytest.fixture
def without_jax_cache():
    """JAX's persistent cache off for the test: what jaxbp's executable cache
    stores depends on it (a program JAX loaded from its own cache is not
    stored), and the suite shares one across its tests."""
    from jax._src import compilation_cache

    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    compilation_cache.reset_cache()  # JAX decides once whether it uses one
    yield
    jax.config.update("jax_enable_compilation_cache", enabled)
    compilation_cache.reset_cache()


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
