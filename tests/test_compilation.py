"""jaxbp.compilation: the fast-compile XLA options and the compilation cache."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxbp import compilation


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter; return its stdout (must succeed)."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_fast_compile_xla_flags_appends_every_option():
    flags = compilation.fast_compile_xla_flags("--xla_dump_to=/tmp/x").split()
    assert flags[0] == "--xla_dump_to=/tmp/x"
    assert flags[1:] == [
        f"--{name}={str(value).lower()}"
        for name, value in compilation.FAST_COMPILE.items()
    ]
    assert compilation.fast_compile_xla_flags() == " ".join(flags[1:])


def test_importing_jaxbp_starts_no_backend():
    """So that conftest.py can set XLA_FLAGS after importing jaxbp.compilation."""
    out = run_python(
        "import jaxbp.compilation, jaxbp.train, jaxbp.recipes, jaxbp.cli\n"
        "from jax._src import xla_bridge\n"
        "print(sorted(xla_bridge._backends))"
    )
    assert out.strip() == "[]"


def test_xla_flags_set_after_the_import_take_effect():
    """An unknown flag set after importing jaxbp is still read: XLA rejects it
    when the backend starts (a flag read too late would be ignored)."""
    code = (
        "import os, jaxbp.compilation\n"
        "os.environ['XLA_FLAGS'] = '--xla_no_such_flag_jaxbp=1'\n"
        "import jax.numpy as jnp\n"
        "jnp.zeros(1).block_until_ready()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert result.returncode != 0
    assert "xla_no_such_flag_jaxbp" in result.stderr


def test_compile_fast_computes_the_same_function():
    def f(x):
        return jnp.tanh(x) @ x.T + 1.0

    x = jax.random.normal(jax.random.key(0), (8, 8), jnp.float32)
    for fast in (True, False):
        got = compilation.compile_fast(f, x, fast=fast)(x)
        np.testing.assert_allclose(got, jax.jit(f)(x), rtol=1e-6, atol=1e-6)


def test_compilation_cache_goes_under_xdg_cache_home(tmp_path):
    code = (
        "import jax\n"
        "from jaxbp.compilation import enable_compilation_cache\n"
        "enable_compilation_cache()\n"
        "print(jax.config.jax_compilation_cache_dir)"
    )
    env = {
        "XDG_CACHE_HOME": str(tmp_path),
        "JAX_COMPILATION_CACHE_DIR": "",
        "JAXBP_COMPILATION_CACHE": "1",  # the suite's conftest turns it off
    }
    out = run_python(code, **env)
    assert out.strip() == str(tmp_path / "jaxbp" / "xla")
    given = str(tmp_path / "mine")
    assert (
        run_python(code, **{**env, "JAX_COMPILATION_CACHE_DIR": given}).strip() == given
    )
    off = run_python(code, **{**env, "JAXBP_COMPILATION_CACHE": "0"})
    assert off.strip() in ("", "None")


def test_compile_log_counts_the_programs_a_block_compiles():
    def double_plus_one(x):
        return 2 * x + 1

    f = jax.jit(double_plus_one)
    seven, eight = np.ones(7, np.float32), np.ones(8, np.float32)
    with compilation.compile_log() as first:
        f(seven)
    with compilation.compile_log() as again:
        f(seven)
    with compilation.compile_log() as new_shape:
        f(eight)
    assert (first.programs, again.programs, new_shape.programs) == (1, 0, 1)
    assert first.seconds > 0 and again.seconds == 0


def test_compile_log_counts_only_its_own_thread():
    import threading

    def in_a_thread():
        jax.jit(lambda x: x - 3)(np.ones(9)).block_until_ready()

    with compilation.compile_log() as log:
        thread = threading.Thread(target=in_a_thread)
        thread.start()
        thread.join()
    assert log.programs == 0


def test_compile_log_counts_overlapping_spans_once():
    log = compilation.CompileLog(spans=[(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (5.5, 5.7)])
    assert log.seconds == 4.0
    assert compilation.CompileLog().seconds == 0.0


def test_host_data_goes_to_the_device_without_compiling():
    from jaxbp import model as M

    model = M.mlp([5, 3])
    host = np.arange(10.0).reshape(2, 5)  # float64: cast to the model's float32
    with compilation.compile_log() as log:
        x = model.check_input(host)
        labels = compilation.to_device(compilation.host_array([1, 0]))
    assert log.programs == 0
    assert x.dtype == jnp.float32 and labels.dtype == jnp.asarray([1, 0]).dtype
    np.testing.assert_array_equal(x, jnp.asarray(host).astype(jnp.float32))
    assert compilation.host_array(x) is None  # a JAX array stays one


def test_jit_fast_computes_the_same_integer_work():
    def bits_and_permutation(key):
        return jax.random.bits(key, (3, 4)), jax.random.permutation(key, 50)

    key = jax.random.key(5)
    fast = compilation.jit_fast(bits_and_permutation)(key)
    default = jax.jit(bits_and_permutation)(key)
    for a, b in zip(fast, default):
        np.testing.assert_array_equal(a, b)


def test_jit_fast_inside_another_program_is_an_inner_jit():
    """Traced (here by ``eval_shape`` and ``jit``), a ``jit_fast`` program is
    an ordinary inner ``jit``: XLA options belong to the outer program only."""
    permute = compilation.jit_fast(lambda key: jax.random.permutation(key, 9))
    key = jax.random.key(2)
    assert jax.eval_shape(permute, key).shape == (9,)
    np.testing.assert_array_equal(jax.jit(permute)(key), permute(key))


def test_importing_jaxbp_loads_no_heavy_library():
    """Start-up: ``import jaxbp`` (and the CLI, training and data modules) costs
    little over ``import jax`` because the heavy libraries load on first use
    (matplotlib when a figure is drawn, scikit-learn only as the digits'
    fallback reader, tqdm when a progress bar is shown)."""
    heavy = ("matplotlib", "sklearn", "scipy", "tqdm", "pandas", "torch", "flax")
    out = run_python(
        "import sys\n"
        "import jaxbp, jaxbp.train, jaxbp.recipes, jaxbp.data, jaxbp.cli\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_programs_per_process_makes_a_program_once_per_settings():
    made = []

    @compilation.programs_per_process(maxsize=4)
    def program(size, options):
        """Made from settings."""
        made.append((size, options))
        return object()

    assert program(3, ("a",)) is program(3, ("a",))  # hashable: made once
    assert program(3, ["a"]) is not program(3, ["a"])  # unhashable: every call
    assert made == [(3, ("a",)), (3, ["a"]), (3, ["a"])]
    program.cache_clear()
    program(3, ("a",))
    assert len(made) == 4
    assert program.__doc__ == "Made from settings."


def test_programs_per_process_raises_a_type_error_of_its_own_once():
    calls = []

    @compilation.programs_per_process(maxsize=4)
    def program(size):
        calls.append(size)
        raise TypeError("a bug in the maker")

    with pytest.raises(TypeError, match="a bug in the maker"):
        program(3)
    assert calls == [3]  # not retried as if the settings were unhashable
