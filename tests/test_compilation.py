"""jaxbp.compilation: the fast-compile XLA options and the compilation cache."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

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
