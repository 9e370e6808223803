"""The two ways a command ends on purpose without success, with their exit status.

Anything else that goes wrong is a bug: it propagates, Python prints its
traceback and the process exits with status 1.
"""

from __future__ import annotations

import contextlib


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


#: How fit's ValueError begins when the checkpoint to resume was written with
#: other settings (a plain ValueError, not a CheckpointError: matched here).
OTHER_SETTINGS = "cannot resume from "


@contextlib.contextmanager
def training_errors(args, where):
    """Within the ``with``, the training call's errors that are the user's
    become one line: divergence a :class:`Diverged` (``where(error)`` names
    the point, e.g. "epoch 3, step 40"), an unreadable checkpoint a
    UsageError naming ``--checkpoint-dir``, one written with other settings
    a UsageError naming ``--resume``. Anything else propagates."""
    from jaxbp import checkpoint, train

    try:
        yield
    except train.TrainingDiverged as error:
        message = (
            f"training diverged at {where(error)} (training loss {error.loss}); "
            "try a smaller --lr or a --clip-norm"
        )
        if error.checkpoint is not None:
            message += f"; the last good checkpoint is {error.checkpoint}"
        raise Diverged(message) from None
    except checkpoint.CheckpointError as error:
        raise UsageError(f"--checkpoint-dir {args.checkpoint_dir}: {error}") from None
    except ValueError as error:
        if args.resume and str(error).startswith(OTHER_SETTINGS):
            raise UsageError(f"--resume: {error}") from None
        raise
