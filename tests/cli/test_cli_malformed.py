"""Property: any malformed flag value is exit 2, one line on stderr, no traceback
(argparse-level mistakes, so no training runs: drawn many at a time)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: flag -> values it must refuse (each a user mistake).
MALFORMED = {
    "--lr": ["0", "-1", "nan", "inf", "x", ""],
    "--epochs": ["0", "-3", "1.5", "ten"],
    "--batch-size": ["0", "-1", "half", "2.5"],
    "--hidden": ["0", "8,-1", "a,b", "8,,8"],
    "--dropout": ["1", "-0.1", "1.5", "nan"],
    "--seed": ["-1", str(2**32), "s"],
    "--l2": ["-1", "inf"],
    "--clip-norm": ["0", "-2"],
    "--dataset": ["cifar", "MNIST"],
    "--optimizer": ["lbfgs", "Adam"],
    "--activation": ["swish"],
    "--devices": ["0", "two"],
    "--eval-batch-size": ["0", "-5", "all"],
}
VALID = [
    ["--quiet"],
    ["--dataset", "blobs"],
    ["--hidden", "8"],
    ["--lr", "0.01"],
    ["--epochs", "2"],
]


# run_main reads (and so resets) the captured output on every call
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    bad=st.lists(
        st.sampled_from(sorted(MALFORMED)).flatmap(
            lambda flag: st.tuples(st.just(flag), st.sampled_from(MALFORMED[flag]))
        ),
        min_size=1,
        max_size=3,
    ),
    good=st.lists(st.sampled_from(VALID), max_size=3),
    order=st.randoms(use_true_random=False),
)
def test_malformed_flags_exit_2_with_one_line(run_main, bad, good, order):
    groups = [list(pair) for pair in bad] + [list(g) for g in good]
    order.shuffle(groups)
    argv = [token for group in groups for token in group]
    result = run_main("train", *argv, "--out", "/nonexistent-never-written")
    assert result.returncode == 2, (argv, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, (argv, lines)
    assert any(flag in lines[0] for flag, _ in bad), (argv, lines)
