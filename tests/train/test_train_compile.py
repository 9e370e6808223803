"""How many programs training compiles: few, once, and none again between epochs."""

import jax
import pytest
from helpers import python_child

from jaxbp import data, optim, recipes, train

#: A fresh process: load the digits, build the MLP preset, fit, evaluate.
FRESH_RUN = """
from jaxbp import data, optim, recipes, train
from jaxbp.compilation import compile_log
with compile_log() as log:
    ds = data.load("digits")
    model = recipes.model("mlp", ds)
    result = train.fit(model, ds.train, ds.val, optimizer=optim.adam(1e-3), epochs=3)
    train.evaluate(model, result.params, ds.test, state=result.state)
print(log.programs, result.compiled_programs, result.compile_seconds > 0)
"""


def test_a_fresh_run_compiles_seven_programs():
    """fit: the run's keys, the random bits and the weights of the
    initialisation, the optimizer's state, an epoch's batches, and the
    epoch with its evaluation; then the test evaluation. Nothing else (an
    array op run eagerly would compile a program of its own)."""
    result = python_child(FRESH_RUN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "6", "True"]


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n=200)


def test_more_epochs_and_other_seeds_compile_nothing_more(digits):
    model = recipes.model("mlp", digits, hidden=(13,))  # a model no other test fits
    tx = optim.sgd(0.1)
    first = train.fit(model, digits.train, digits.val, optimizer=tx, epochs=1)
    longer = train.fit(model, digits.train, digits.val, optimizer=tx, epochs=4, seed=9)
    assert first.compiled_programs >= 3 and first.compile_seconds > 0
    assert longer.compiled_programs == 0 and longer.compile_seconds == 0


def test_a_cached_epoch_program_is_not_reused_under_other_jax_settings(digits):
    """fit keeps its compiled epoch per model and optimizer for later runs;
    a later run under other scoped JAX settings (here 64-bit mode, which
    changes a float32 run's random draws) must compute what a fresh one does."""
    model = recipes.model("mlp", digits, hidden=(11,))  # a model no other test fits
    tx = optim.sgd(0.1)
    with jax.enable_x64(False):
        off = train.fit(model, digits.train, digits.val, optimizer=tx, epochs=2)
    again = train.fit(model, digits.train, digits.val, optimizer=tx, epochs=2)
    fresh = train.fit(
        model, digits.train, digits.val, optimizer=optim.sgd(0.1), epochs=2
    )
    assert jax.config.jax_enable_x64  # the suite's setting (conftest.py)
    assert off.history != fresh.history
    assert again.history == fresh.history


#: A fresh process fitting with jaxbp's executable cache in ``EXE_DIR`` (off
#: when it is empty): the history, and the programs compiled or loaded.
CACHED_RUN = """
import os
from jaxbp import data, executable_cache, optim, recipes, train
from jaxbp.compilation import compile_log
if os.environ["EXE_DIR"]:
    executable_cache.enable(os.environ["EXE_DIR"])
ds = data.load("digits")
model = recipes.model("mlp", ds)
with compile_log() as log:
    result = train.fit(model, ds.train, ds.val, optimizer=optim.adam(1e-3), epochs=2)
print(f"{log.programs}/{log.loaded}", repr(result.history))
"""


def test_a_run_from_the_executable_cache_loads_every_program_and_is_the_same(tmp_path):
    """The second process loads all six of fit's programs (it compiles none)
    and its history is bit for bit the first's and a run's without the cache."""

    def run(directory):
        result = python_child(CACHED_RUN, EXE_DIR=directory)
        assert result.returncode == 0, result.stderr
        return result.stdout.split(" ", 1)

    programs, first = run(str(tmp_path))
    assert programs == "6/0" and len(list(tmp_path.glob("*.exe"))) == 6
    programs, second = run(str(tmp_path))
    assert programs == "6/6"
    programs, uncached = run("")
    assert programs == "6/0"
    assert first == second == uncached
