"""jaxbp.executable_cache: programs kept on disk, keyed by their jaxpr."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import AFFINE_X as X
from helpers import affine, python_child

from jaxbp import compilation, executable_cache

#: What this cache stores depends on JAX's persistent cache, which the suite
#: shares across its tests (conftest): off here.
pytestmark = pytest.mark.usefixtures("without_jax_cache")


@pytest.fixture
def cache_dir(tmp_path):
    """The cache on, in a fresh directory; off again after the test."""
    executable_cache.enable(tmp_path / "exe")
    yield tmp_path / "exe"
    executable_cache.disable()


def entries(directory):
    return sorted(p.name for p in directory.glob("*.exe")) if directory.exists() else []


def test_a_stored_program_is_loaded_and_gives_the_same_results(cache_dir):
    def cubic(x):  # compiled by this test only (JAX keeps programs in memory)
        return x @ x.T @ x + 3.0

    with compilation.compile_log() as first:
        got = executable_cache.jit(cubic)(X)
    assert len(entries(cache_dir)) == 1 and first.programs == 1
    spans = []

    def on_span(event, start, end, **kwargs):
        spans.append(event)

    jax.monitoring.register_event_time_span_listener(on_span)
    try:
        with compilation.compile_log() as second:
            again = executable_cache.jit(cubic)(X)  # a new function: nothing in memory
    finally:
        jax.monitoring.unregister_event_time_span_listener(on_span)
    assert executable_cache.LOAD_EVENT in spans
    assert (
        compilation.COMPILE_EVENT not in spans and compilation.LOWER_EVENT not in spans
    )
    assert (first.loaded, second.programs, second.loaded) == (0, 1, 1)
    want = jax.jit(cubic)(X)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(again, want)


def test_a_call_with_the_same_signature_uses_the_program_in_memory(cache_dir):
    f = executable_cache.jit(affine)
    f(X)
    with compilation.compile_log() as again:
        f(X + 1)
    with compilation.compile_log() as other_shape:
        f(X[:2])
    assert (again.programs, again.seconds) == (0, 0)
    assert other_shape.programs == 1 and len(entries(cache_dir)) == 2


def test_a_damaged_entry_is_compiled_again_and_rewritten(cache_dir):
    executable_cache.jit(affine)(X)
    (entry,) = cache_dir.glob("*.exe")
    good = entry.read_bytes()
    entry.write_bytes(good[: len(good) // 2])
    got = executable_cache.jit(affine)(X)
    np.testing.assert_array_equal(got, jax.jit(affine)(X))
    assert entry.read_bytes() == good


def test_the_settings_of_the_call_select_the_program(cache_dir):
    """An entry made with x64 off is not used with it on (and vice versa)."""
    f = executable_cache.jit(lambda x: x * 2)
    with jax.enable_x64(False):
        assert f(np.float64(1.5)).dtype == jnp.float32
    with jax.enable_x64(True):
        assert f(np.float64(1.5)).dtype == jnp.float64
        assert (
            executable_cache.jit(lambda x: x * 2)(np.float64(1.5)).dtype == jnp.float64
        )
    assert len(entries(cache_dir)) == 2


def test_compiler_options_are_those_asked_for(cache_dir):
    """Fast-compiled and default programs are different entries, and the
    integer work jit_fast exists for gives the same bits either way."""

    def bits(key):
        return jax.random.bits(key, (64,))

    key = jax.random.key(3)
    fast = executable_cache.jit(bits, compilation.FAST_COMPILE)(key)
    default = executable_cache.jit(bits)(key)
    np.testing.assert_array_equal(fast, default)
    assert len(entries(cache_dir)) == 2


def test_off_it_is_jax_jit_and_writes_nothing(tmp_path):
    assert executable_cache.directory() is None
    f = executable_cache.jit(affine)
    np.testing.assert_array_equal(f(X), jax.jit(affine)(X))
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(params=["off", "on"])
def cache_on_and_off(request, tmp_path):
    """The test runs with the cache off, then on (in a fresh directory)."""
    if request.param == "on":
        executable_cache.enable(tmp_path / "exe")
    yield request.param
    executable_cache.disable()


def test_options_xla_does_not_know_fall_back_to_the_defaults(cache_on_and_off):
    f = executable_cache.jit(affine, {"xla_no_such_option_jaxbp": True})
    np.testing.assert_array_equal(f(X), jax.jit(affine)(X))


def test_an_error_while_running_is_raised_once_not_retried(cache_on_and_off):
    """Only compiling falls back to the default options: a program that
    fails as it runs is not run again."""
    calls = []

    def fail(x):
        calls.append(x)
        raise RuntimeError("the callback failed")

    def program(x):
        jax.debug.callback(fail, x)
        return x + 1

    f = executable_cache.jit(program, compilation.FAST_COMPILE)
    with pytest.raises(jax.errors.JaxRuntimeError, match="the callback failed"):
        jax.block_until_ready(f(X))
    assert len(calls) == 1


def test_inside_another_program_it_is_an_inner_jit(cache_dir):
    f = executable_cache.jit(affine, compilation.FAST_COMPILE)
    np.testing.assert_array_equal(jax.jit(f)(X), jax.jit(affine)(X))
    assert jax.eval_shape(f, X).shape == (3, 3)
    assert entries(cache_dir) == []


def test_a_program_xla_will_not_serialize_is_run_and_not_stored(tmp_path):
    """A sort compiled first through ``jax.jit``'s dispatch (cache off) and
    then fetched from JAX's memory is one XLA refuses to serialize."""

    def permute(key):
        return jax.random.permutation(key, 50)

    key = jax.random.key(1)
    want = jax.jit(permute, compiler_options=compilation.FAST_COMPILE)(key)
    executable_cache.enable(tmp_path)
    try:
        got = executable_cache.jit(permute, compilation.FAST_COMPILE)(key)
    finally:
        executable_cache.disable()
    np.testing.assert_array_equal(got, want)


#: Three fresh processes share JAX's persistent cache and jaxbp's: the first
#: compiles through ``jax.jit`` (JAX's cache only), the next two through
#: ``executable_cache.jit``.
THREE_PROCESSES = """
import sys, jax, jax.numpy as jnp, numpy as np
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
from jaxbp import executable_cache
def layer(x, w):
    h = jnp.tanh(x @ w + 1.0)
    return (h * jnp.arange(h.shape[1])).sum(axis=1), jax.nn.softmax(h)
x = np.linspace(-1, 1, 128, dtype=np.float32).reshape(8, 16)
w = np.linspace(-0.5, 0.5, 512, dtype=np.float32).reshape(16, 32)
if sys.argv[2] == "jax":
    out = jax.jit(layer)(x, w)
else:
    executable_cache.enable(sys.argv[2])
    out = executable_cache.jit(layer)(x, w)
print(repr(np.asarray(out[0]).tolist()))
"""


def test_a_program_loaded_from_jaxs_own_cache_is_not_stored(tmp_path):
    """JAX's persistent cache hit (jaxbp's missing, as after an upgrade of
    jaxbp) gives a program that serializes without its kernels' code: it
    must not be stored, or the next process would load it and fail as it
    runs ("Function ... not found")."""
    jax_cache, exe = tmp_path / "jax", tmp_path / "exe"

    def child(where):
        result = python_child(
            "import sys; sys.argv[1:] = "
            + repr([str(jax_cache), where])
            + "\n"
            + THREE_PROCESSES
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    first = child("jax")
    assert child(str(exe)) == first  # found in JAX's cache
    assert entries(exe) == []
    assert child(str(exe)) == first  # and again: nothing broken was stored


def test_an_entry_under_another_programs_name_is_not_loaded(cache_dir):
    """A file copied to another key's name holds that other key in its
    header: it is not loaded, and the right program is compiled and stored."""

    def double(x):
        return x * 2.0

    def triple(x):
        return x * 3.0

    executable_cache.jit(double)(X)
    (double_entry,) = cache_dir.glob("*.exe")
    executable_cache.jit(triple)(X)
    (triple_entry,) = set(cache_dir.glob("*.exe")) - {double_entry}
    triple_entry.write_bytes(double_entry.read_bytes())
    np.testing.assert_array_equal(executable_cache.jit(triple)(X), X * 3.0)
    assert triple_entry.read_bytes() != double_entry.read_bytes()


def test_eviction_deletes_the_least_recently_used_entries(tmp_path):
    import os

    for age, name in enumerate(["newest", "middle", "oldest"]):
        path = tmp_path / f"{name}.exe"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1e9 - age * 10, 1e9 - age * 10))
    stale = tmp_path / ".tmp-unfinished"
    stale.write_bytes(b"x")
    os.utime(stale, (1e9, 1e9))
    executable_cache.evict(tmp_path, max_bytes=250)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["middle.exe", "newest.exe"]
    executable_cache.evict(tmp_path, max_bytes=100)
    assert [p.name for p in tmp_path.iterdir()] == ["newest.exe"]


def test_loading_an_entry_marks_it_used(cache_dir):
    import os

    executable_cache.jit(affine)(X)
    (entry,) = cache_dir.glob("*.exe")
    os.utime(entry, (1e9, 1e9))
    executable_cache.jit(affine)(X)  # a new function: loads the entry
    assert entry.stat().st_mtime > 1e9 + 1
