"""benchmarks/xla.py: XLA's view of compiled programs, and unavailable answers
reported, not swallowed."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import xla


@pytest.fixture
def dot_program():
    """A compiled ``relu(a @ b)`` with its arguments."""
    a, b = jnp.ones((32, 16), jnp.float32), jnp.ones((16, 8), jnp.float32)
    compiled = jax.jit(lambda a, b: jax.nn.relu(a @ b)).lower(a, b).compile()
    return compiled, a, b


class _Unimplemented:
    """A compiled program of a backend that implements no introspection."""

    def memory_analysis(self):
        raise NotImplementedError("no memory analysis here")

    def cost_analysis(self):
        raise NotImplementedError("no cost analysis here")

    def as_text(self):
        raise NotImplementedError("no HLO text here")


def test_memory_columns(dot_program):
    compiled, _, _ = dot_program
    cols = xla.memory_columns(compiled, "f")
    arguments = (32 * 16 + 16 * 8) * 4 / xla.MiB
    assert cols["f_argument_mib"] == pytest.approx(arguments)
    assert cols["f_output_mib"] == pytest.approx(32 * 8 * 4 / xla.MiB)
    assert cols["f_peak_mib"] == pytest.approx(
        cols["f_argument_mib"]
        + cols["f_output_mib"]
        - cols["f_alias_mib"]
        + cols["f_temp_mib"]
    )


def test_xla_gflop_counts_the_dot(dot_program):
    compiled, _, _ = dot_program
    # the dot's 2·32·16·8 FLOPs, plus the ReLU's elementwise work
    assert xla.xla_gflop(compiled) * 1e9 >= 2 * 32 * 16 * 8


def test_hlo_op_count_and_classes(dot_program):
    compiled, _, _ = dot_program
    assert xla.hlo_op_count(compiled) >= 1
    classes = xla.hlo_op_classes(compiled)
    assert "matmul" in classes.values()
    assert set(classes.values()) <= {"matmul", "other", "control"}
    assert xla.dot_kernel(compiled) in ("ynnpack", "eigen")


def test_hlo_op_classes_marks_loops_as_control():
    def loop(x):
        return jax.lax.fori_loop(0, 3, lambda i, h: jnp.tanh(h @ x), x)

    x = jnp.ones((4, 4), jnp.float32)
    classes = xla.hlo_op_classes(jax.jit(loop).lower(x).compile())
    assert "control" in classes.values() and "matmul" in classes.values()


def test_kernel_profile(dot_program):
    compiled, a, b = dot_program
    profile = xla.kernel_profile(functools.partial(compiled, a, b), compiled, 3)
    assert profile["kernels"] >= 1 and profile["kernel_launches"] >= 1
    assert profile["matmul_us"] > 0
    assert profile["kernel_us"] == pytest.approx(
        profile["matmul_us"] + profile["other_us"]
    )
    assert 0 < profile["execute_us"] <= profile["wall_us"]
    slowest = list(profile["ops"].values())
    assert slowest == sorted(slowest, reverse=True)


@pytest.mark.parametrize(
    "introspect", [xla.xla_gflop, xla.hlo_op_count, xla.hlo_op_classes, xla.dot_kernel]
)
def test_an_unimplemented_analysis_is_unavailable(introspect):
    with pytest.raises(xla.Unavailable, match="not|no "):
        introspect(_Unimplemented())


def test_attempt_columns_reports_the_reason(capsys):
    cols = xla.attempt_columns("f_memory", xla.memory_columns, _Unimplemented(), "f")
    assert cols == {"f_memory": "unavailable: memory analysis: no memory analysis here"}
    err = capsys.readouterr().err
    assert "warning: f_memory unavailable: memory analysis: no memory analysis" in err


def test_attempt_returns_the_value_or_the_reason(capsys):
    assert xla.attempt("x", lambda v: v + 1, 1) == 2
    assert capsys.readouterr().err == ""
    assert xla.attempt("x", xla.xla_gflop, _Unimplemented()).startswith(
        "unavailable: cost analysis: no cost analysis here"
    )
    assert "warning: x unavailable" in capsys.readouterr().err


def test_attempt_lets_bugs_through():
    with pytest.raises(ZeroDivisionError):
        xla.attempt("x", lambda: 1 / 0)


def test_a_profiler_that_cannot_start_is_unavailable(monkeypatch, dot_program):
    def refuse(*args, **kwargs):
        raise RuntimeError("profiler busy")

    monkeypatch.setattr(jax.profiler, "start_trace", refuse)
    compiled, a, b = dot_program
    with pytest.raises(xla.Unavailable, match="profiler busy"):
        xla.kernel_profile(functools.partial(compiled, a, b), compiled, 1)


def test_peak_rss_delta_sees_a_new_buffer():
    size = 64 * xla.MiB

    def allocate():
        return np.ones(size // 8)  # touched pages: 64 MiB of resident memory

    assert xla.peak_rss_delta_mib(allocate, reps=1) > 0.5 * size / xla.MiB


def test_peak_rss_delta_without_proc_is_unavailable(monkeypatch):
    def no_proc(self, *args, **kwargs):
        raise OSError("no such file")

    monkeypatch.setattr(xla.Path, "write_text", no_proc)
    with pytest.raises(xla.Unavailable, match="high-water mark: no such file"):
        xla.peak_rss_delta_mib(lambda: None, reps=1)
