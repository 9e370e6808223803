"""``jaxbp train --checkpoint-dir DIR [--resume]``: the flags a run was started
with, kept beside its checkpoints, so that a resume with other flags is caught.

A fresh run writes ``DIR/flags.json`` (its flags after the presets are filled
in); ``--resume`` needs a checkpoint in DIR and the same flags, except those
that do not change the run's numbers (``FREE_FLAGS``: where the files go,
the progress bar, the devices and processes it runs on, and ``--epochs``
(text: ``--steps``), which may be raised to train on).

``--resume --allow-changed-flags`` also lets the flags in ``OVERRIDABLE``
change (the optimizer's step sizes and evaluation's chunking: neither the
checkpoint's structure nor the settings ``jaxbp.train.fit`` records and checks
depend on them), with a warning naming each; ``flags.json`` then holds the
new values, and its ``changed_on_resume`` list (copied into ``metrics.json``'s
config) one entry per such resume, ``{flag: [old, new], ..., "epoch": N}``
(``"step": N`` for text runs).
Every other changed flag still exits 2.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from jaxbp.cli.errors import UsageError

FLAGS_FILE = "flags.json"

#: ``flags.json``'s (and metrics.json's config's) list of resumes that changed flags.
CHANGES = "changed_on_resume"

#: The flags a resume may change (``argv``/``command`` are bookkeeping).
FREE_FLAGS = (
    "out",
    "quiet",
    "resume",
    "checkpoint_dir",
    "epochs",
    "steps",
    "devices",
    "coordinator_address",
    "num_processes",
    "process_id",
    "join_timeout",
    "argv",
    "command",
    "allow_changed_flags",
    CHANGES,
)

#: The flags ``--allow-changed-flags`` lets a resume change: the learning
#: rate, AdamW's decoupled decay and the evaluation chunk size. The rest shape
#: the model or its optimizer state (``--lr-schedule cosine`` adds a step
#: count to it), pick the data, batches and keys, or are settings fit stores
#: in the checkpoint and refuses to change (seed, batch size, loss, backprop,
#: l2, clip norm, patience).
OVERRIDABLE = ("lr", "weight_decay", "eval_batch_size")


class ChangedFlagsWarning(UserWarning):
    """A resume with ``--allow-changed-flags`` changed some flags."""


def run_flags(args) -> dict:
    """The flags that decide the run's numbers, as JSON values."""
    flags = {k: v for k, v in vars(args).items() if k not in FREE_FLAGS}
    return json.loads(json.dumps(flags, default=list))


def _shown(value) -> str:
    """A flag's value as typed (lists comma-separated; unset as "unset")."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "unset" if value is None else str(value)


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def changed_flags(stored: dict, current: dict) -> dict:
    """``{name: (stored value, current value)}`` for every flag that differs."""
    return {
        k: (stored[k], v) for k, v in current.items() if k in stored and stored[k] != v
    }


def different_flags(stored: dict, current: dict) -> list[str]:
    """``"--lr 0.001 in the checkpoints, now 0.01"`` for every changed flag."""
    return [
        f"{_flag(k)} {_shown(old)} in the checkpoints, now {_shown(new)}"
        for k, (old, new) in changed_flags(stored, current).items()
    ]


def resumed_position(directory, unit: str = "epoch") -> int:
    """The epoch (``unit="step"``: the optimizer step) a resume from
    ``directory`` continues from: the last record of the newest checkpoint
    whose metadata reads (checkpoints of text runs are numbered by round, so
    the number in the file name is not it); 0 if there is none."""
    from jaxbp import checkpoint

    for _, path in reversed(checkpoint.all_checkpoints(directory)):
        try:
            history = checkpoint.read_metadata(path)["metadata"]["history"]
        except (checkpoint.CheckpointError, KeyError, TypeError):
            continue
        return int(history[-1][unit]) if history else 0
    return 0


def progress_unit(args) -> str:
    """What a run counts: ``"step"`` for ``--dataset text``, else ``"epoch"``."""
    return "step" if getattr(args, "dataset", None) == "text" else "epoch"


def check_resume(args) -> None:
    """``--resume``: a checkpoint must be there, written with the same flags
    (or, with ``--allow-changed-flags``, flags differing in ``OVERRIDABLE``
    only: then a warning, and ``flags.json`` records the change)."""
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
    stored = json.loads(path.read_text())
    earlier = stored.pop(CHANGES, [])
    current = run_flags(args)
    changed = changed_flags(stored, current)
    if changed and getattr(args, "allow_changed_flags", False):
        _refuse_fixed(directory, stored, current, changed)
        unit = progress_unit(args)
        position = resumed_position(directory, unit)
        earlier = [*earlier, _change_entry(changed, unit, position)]
        warnings.warn(
            f"--allow-changed-flags: resuming with {'; '.join(different_flags(stored, current))}",
            ChangedFlagsWarning,
            stacklevel=2,
        )
        _write_flags(directory, current, earlier)
    elif changed:
        hint = (
            ", or add --allow-changed-flags to resume with them"
            if set(changed) <= set(OVERRIDABLE)
            else ""
        )
        raise UsageError(
            f"--resume: the checkpoints in {directory} were written with other "
            f"flags: {'; '.join(different_flags(stored, current))}; resume with "
            f"the same flags{hint}, or start afresh with another --checkpoint-dir"
        )
    if earlier:
        setattr(args, CHANGES, earlier)


def _refuse_fixed(directory, stored, current, changed) -> None:
    fixed = [k for k in changed if k not in OVERRIDABLE]
    if fixed:
        details = different_flags(
            {k: stored[k] for k in fixed}, {k: current[k] for k in fixed}
        )
        raise UsageError(
            f"--allow-changed-flags: {', '.join(map(_flag, fixed))} cannot be "
            "overridden on resume (they shape the model, its data or its "
            "optimizer state, or are settings the checkpoints record): "
            f"{'; '.join(details)}; only "
            f"{', '.join(map(_flag, OVERRIDABLE))} may change"
        )


def _change_entry(changed: dict, unit: str, position: int) -> dict:
    """``{flag: [old, new], ..., "epoch": N}`` (text runs: ``"step": N``),
    N where the resumed run continues, for metrics.json's config."""
    return {**{k: [old, new] for k, (old, new) in changed.items()}, unit: position}


def _write_flags(directory: Path, flags: dict, changes: list) -> None:
    if changes:
        flags = {**flags, CHANGES: changes}
    (directory / FLAGS_FILE).write_text(json.dumps(flags, indent=2))


def record_flags(args) -> None:
    """A fresh run with ``--checkpoint-dir``: write its flags beside the checkpoints."""
    if getattr(args, "allow_changed_flags", False):
        raise UsageError(
            "--allow-changed-flags applies to --resume only (a fresh run has no "
            "earlier flags to change)"
        )
    directory = Path(args.checkpoint_dir)
    directory.mkdir(parents=True, exist_ok=True)
    _write_flags(directory, run_flags(args), [])
