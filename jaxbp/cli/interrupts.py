"""Ctrl-C and SIGTERM during ``jaxbp train``: stop after the running epoch, losing nothing.

:class:`Interrupts` catches the signals while training runs (``fit`` asks it
after every epoch through ``should_stop``); :func:`interrupted_message` is the
one line printed once the files are written.
"""

from __future__ import annotations

import shlex
import signal
import sys


class Interrupts:
    """While entered, SIGINT (Ctrl-C) and SIGTERM are caught: the first one is
    kept in ``signal`` (training stops after the running epoch, losing
    nothing), a second one stops at once (KeyboardInterrupt)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signal = None
        self._previous = {}

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._catch) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _catch(self, signum, frame):
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"jaxbp train: {signal.Signals(signum).name}: stopping after this "
            "epoch (text: this round of steps; send it again to stop at once)",
            file=sys.stderr,
        )


def interrupted_message(args, result, out) -> str:
    """One line: where training stopped, what was written, how to resume."""
    if getattr(args, "steps", None) is not None:  # text trains in steps
        history = result.history
        where = f"step {history[-1]['step'] if history else 0} of {args.steps}"
    else:
        where = f"epoch {len(result.history)} of {args.epochs}"
    message = (
        f"jaxbp train: interrupted after {where}; "
        f"wrote {out / 'metrics.json'} and {out / 'curves.png'}"
    )
    if args.checkpoint_dir is None:
        return message + "; no --checkpoint-dir, so it cannot be resumed"
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if "--resume" not in argv:
        argv.append("--resume")
    return message + f"; resume with: {shlex.join(['jaxbp', *argv])}"
