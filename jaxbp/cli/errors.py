"""The two ways a command ends on purpose without success, with their exit status.

Anything else that goes wrong is a bug: it propagates, Python prints its
traceback and the process exits with status 1.
"""

from __future__ import annotations


class UsageError(Exception):
    """A user mistake: a bad flag value, a bad or missing file named by a flag,
    flags that contradict each other. The message names the flag as typed
    (``--lr``, not ``learning_rate``)."""

    status = 2


class Diverged(Exception):
    """The training run diverged (the loss or the parameters became NaN or
    infinite). The message names the epoch and the step."""

    status = 3


def one_line(message: str) -> str:
    """``message`` with its line breaks and runs of spaces made single spaces."""
    return " ".join(message.split())
