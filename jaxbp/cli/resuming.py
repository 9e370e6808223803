"""``jaxbp train --checkpoint-dir DIR [--resume]``: the flags a run was started
with, kept beside its checkpoints, so that a resume with other flags is caught.

A fresh run writes ``DIR/flags.json`` (its flags after the presets are filled
in); ``--resume`` needs a checkpoint in DIR and the same flags, except those
that do not change the run's numbers (``FREE_FLAGS``: where the files go,
the progress bar, and ``--epochs`` (text: ``--steps``), which may be raised
to train on).
"""

from __future__ import annotations

import json
from pathlib import Path

from jaxbp.cli.errors import UsageError

FLAGS_FILE = "flags.json"

#: The flags a resume may change (``argv``/``command`` are bookkeeping).
FREE_FLAGS = (
    "out",
    "quiet",
    "resume",
    "checkpoint_dir",
    "epochs",
    "steps",
    "devices",
    "argv",
    "command",
)


def run_flags(args) -> dict:
    """The flags that decide the run's numbers, as JSON values."""
    flags = {k: v for k, v in vars(args).items() if k not in FREE_FLAGS}
    return json.loads(json.dumps(flags, default=list))


def _shown(value) -> str:
    """A flag's value as typed (lists comma-separated; unset as "unset")."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "unset" if value is None else str(value)


def different_flags(stored: dict, current: dict) -> list[str]:
    """``"--lr 0.001 in the checkpoints, now 0.01"`` for every changed flag."""
    return [
        f"--{k.replace('_', '-')} {_shown(stored[k])} in the checkpoints, "
        f"now {_shown(v)}"
        for k, v in current.items()
        if k in stored and stored[k] != v
    ]


def check_resume(args) -> None:
    """``--resume``: a checkpoint must be there, written with the same flags."""
    from jaxbp import checkpoint

    directory = Path(args.checkpoint_dir)
    if checkpoint.latest(directory) is None:
        raise UsageError(
            f"--resume: --checkpoint-dir {directory} holds no checkpoint to resume "
            "from (drop --resume to start afresh)"
        )
    path = directory / FLAGS_FILE
    if not path.is_file():  # written by an older jaxbp: fit checks what it can
        return
    differ = different_flags(json.loads(path.read_text()), run_flags(args))
    if differ:
        raise UsageError(
            f"--resume: the checkpoints in {directory} were written with other "
            f"flags: {'; '.join(differ)}; resume with the same flags, or start "
            "afresh with another --checkpoint-dir"
        )


def record_flags(args) -> None:
    """A fresh run with ``--checkpoint-dir``: write its flags beside the checkpoints."""
    directory = Path(args.checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / FLAGS_FILE).write_text(json.dumps(run_flags(args), indent=2))
