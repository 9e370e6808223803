"""Checkpoints of a fit, and resuming from them bit for bit.

A checkpoint holds everything a run depends on: the train state (parameters,
model state, optimizer state), the PRNG ``train_key``, the best epoch's train
state (with early stopping), and as metadata the epoch, the history, the
early-stopping bookkeeping and the run's settings (a resume with other
settings is refused). As every epoch's randomness comes from
``fold_in(train_key, epoch)``, a resumed run's parameters and history are
bit-identical to an uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from jaxbp import checkpoint as ckpt
from jaxbp.checkpoint_saver import BackgroundSaver
from jaxbp.train.distributed import is_main_process
from jaxbp.train.history import Progress
from jaxbp.train.step import TrainState

#: Settings a checkpoint was written with under an older name.
_RENAMED_SETTINGS = {"weight_decay": "l2"}  # the coupled L2 penalty


def checkpoint_tree(progress: Progress, train_key) -> dict:
    """The arrays of a checkpoint (also the template to load one into)."""
    best = progress.best
    return {
        "train_state": progress.current._asdict(),
        "key": train_key,
        "best": None if best is None else best._asdict(),
    }


def checkpoint_metadata(progress: Progress, config: dict) -> dict:
    """The JSON side of a checkpoint: epoch, history, best epoch, settings."""
    return {
        "epoch": progress.epoch,
        "history": progress.history,
        "best_val_loss": progress.best_val_loss,
        "best_epoch": progress.best_epoch,
        "stopped_early": progress.stopped_early,
        "config": config,
    }


def check_config(stored: dict, current: dict, path) -> None:
    """Raise unless the checkpoint's settings are the run's (naming the differences)."""
    stored = {_RENAMED_SETTINGS.get(k, k): v for k, v in stored.items()}
    different = {
        k: (stored.get(k), v) for k, v in current.items() if stored.get(k) != v
    }
    if different:
        details = ", ".join(
            f"{k}: checkpoint {old!r}, now {new!r}"
            for k, (old, new) in different.items()
        )
        raise ValueError(
            f"cannot resume from {path}: it was written with other settings ({details})"
        )


def restore(checkpoint_dir, resume: bool, progress: Progress, train_key, config):
    """``(progress, train_key, path)`` from the newest checkpoint in
    ``checkpoint_dir``; unchanged (and path None) when there is none.

    ``progress`` and ``train_key`` are the fresh run's, used as the template.
    A directory with checkpoints needs ``resume=True``.
    """
    checkpoint_dir = Path(checkpoint_dir)
    path = ckpt.latest(checkpoint_dir)
    if path is None:
        return progress, train_key, None
    if not resume:
        raise ValueError(
            f"checkpoint directory {checkpoint_dir} already holds checkpoints "
            f"(newest {path.name}); pass resume=True to continue from it, or "
            "use an empty directory"
        )
    path, (tree, meta) = _load_newest_intact(checkpoint_dir, progress, train_key)
    check_config(meta.get("config", {}), config, path)
    best = tree["best"]
    restored = Progress(
        current=TrainState(**tree["train_state"]),
        best=None if best is None else TrainState(**best),
        history=meta["history"],
        epoch=meta["epoch"],
        best_val_loss=meta["best_val_loss"],
        best_epoch=meta["best_epoch"],
        stopped_early=meta["stopped_early"],
    )
    return restored, tree["key"], path


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint could not be read; an older intact one was used."""


def _load_newest_intact(checkpoint_dir: Path, progress: Progress, train_key):
    """``(path, (tree, metadata))`` of the newest checkpoint that loads; a
    CheckpointFallbackWarning names each unreadable newer one. When none
    loads, the newest one's CheckpointError is raised."""
    template = checkpoint_tree(progress, train_key)
    newest_error = None
    for _, path in reversed(ckpt.all_checkpoints(checkpoint_dir)):
        try:
            loaded = ckpt.load(path, template)
        except ckpt.CheckpointError as error:
            newest_error = newest_error or error
            continue
        if newest_error is not None:
            warnings.warn(
                f"{newest_error}; resuming from the newest intact checkpoint, "
                f"{path.name}, instead",
                CheckpointFallbackWarning,
                stacklevel=4,
            )
        return path, loaded
    raise newest_error


@contextlib.contextmanager
def background_saver(checkpoint_dir, keep: int):
    """A :class:`BackgroundSaver` for ``checkpoint_dir`` (None: no saver),
    closed on exit: every request written. When the body raises, the saver is
    still closed, but its own error is dropped so the body's is raised. In a
    multi-process job only process 0 writes (the others get None); they all
    read the same directory to resume."""
    if checkpoint_dir is None or not is_main_process():
        yield None
        return
    saver = BackgroundSaver(checkpoint_dir, keep=keep)
    try:
        yield saver
    except BaseException:
        with contextlib.suppress(Exception):
            saver.close()
        raise
    saver.close()
