"""Fixtures of the command-line tests."""

import pytest

from jaxbp import cli


class Outcome:
    """What an in-process ``jaxbp`` run returned and printed."""

    def __init__(self, status, out, err):
        self.returncode, self.stdout, self.stderr = status, out, err


@pytest.fixture
def run_main(monkeypatch, capsys):
    """``run_main(*argv)`` runs ``jaxbp.cli.main(argv)`` in this process (no
    compilation cache) and returns its Outcome; argparse's exits count as
    returns. Other exceptions propagate."""
    monkeypatch.setenv("JAXBP_COMPILATION_CACHE", "0")

    def run(*argv):
        capsys.readouterr()
        try:
            status = cli.main(list(argv))
        except SystemExit as exit_:
            status = exit_.code
        out, err = capsys.readouterr()
        return Outcome(status, out, err)

    return run
