"""The two ways a command ends on purpose without success, with their exit status.

Anything else that goes wrong is a bug: it propagates, Python prints its
traceback and the process exits with status 1.
"""

from __future__ import annotations

import contextlib
import re


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

#: XLA's status when an allocation fails (in a ``JaxRuntimeError``'s message).
OUT_OF_MEMORY = "RESOURCE_EXHAUSTED"


def out_of_memory(args, error) -> UsageError:
    """The one line for XLA running out of memory: what it asked for, and the
    size flags that bound a run's memory (a text run's windows, or the batch
    and the evaluation chunks)."""
    message = str(error)
    asked = re.search(r"allocating (\d+) bytes", message)
    size = f" ({int(asked.group(1)) / 2**30:,.1f} GiB)" if asked else ""
    if getattr(args, "dataset", None) == "text":
        flags = "--batch-size or --block-size (or a smaller model)"
    else:
        flags = "--batch-size or --eval-batch-size (or a smaller model)"
    return UsageError(
        f"out of memory: XLA could not allocate what this run asked for{size}; "
        f"a smaller {flags} needs less"
    )


@contextlib.contextmanager
def training_errors(args, where):
    """Within the ``with``, the training call's errors that are the user's
    become one line: divergence a :class:`Diverged` (``where(error)`` names
    the point, e.g. "epoch 3, step 40"), an unreadable checkpoint a
    UsageError naming ``--checkpoint-dir``, one written with other settings
    a UsageError naming ``--resume``, XLA out of memory a UsageError naming
    the size flags (:func:`out_of_memory`). Anything else propagates."""
    import jax

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
    except jax.errors.JaxRuntimeError as error:
        if OUT_OF_MEMORY in str(error):
            raise out_of_memory(args, error) from None
        raise
