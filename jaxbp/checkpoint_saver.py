"""Checkpoints saved in a background thread, so training never waits for the disk.

::

    saver = BackgroundSaver(directory, keep=2)   # what jaxbp.train.fit uses
    saver.request(step, tree, metadata)          # returns at once
    saver.close()                                # all written

Each save is ``jaxbp.checkpoint.save``: atomic, no pickle (see that module for
the format).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from jaxbp.checkpoint import save


class BackgroundSaver:
    """:func:`save` in a background thread, so training never waits for the disk.

    ``request(step, tree, metadata)`` returns at once. The writer thread saves
    the newest request; when requests come faster than the disk takes them
    (``fsync`` costs milliseconds, a small model's epoch less), a request
    still waiting is replaced by the newer one, so some steps are never
    written, but the newest is always written next. ``flush()`` waits until
    the newest request is on disk and returns its path. An error in the
    writer is raised again by the next ``request`` or ``flush``. ``tree``
    must not change after the request (JAX arrays never do); ``metadata`` is
    copied into JSON at once. Saves are atomic as with :func:`save`: a process
    killed mid-save leaves the previous checkpoints intact.
    """

    def __init__(self, directory, *, keep=2):
        self.directory = Path(directory)
        self.keep = keep
        self.last_path: Path | None = None
        self._pending = None
        self._busy = False
        self._error: BaseException | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name="jaxbp-checkpoint-writer", daemon=True
        )
        self._thread.start()

    def request(self, step: int, tree: Any, metadata: dict | None = None) -> None:
        """Ask for ``tree`` and ``metadata`` to be saved as ``step``."""
        text = json.dumps(metadata or {}, allow_nan=True)  # snapshot now
        with self._cond:
            self._raise_error()
            self._pending = (step, tree, text)
            self._cond.notify_all()

    def flush(self) -> Path | None:
        """Wait until every request is written; the newest checkpoint's path."""
        with self._cond:
            while self._pending is not None or self._busy:
                if self._error is not None:
                    break
                self._cond.wait()
            self._raise_error()
            return self.last_path

    def close(self) -> Path | None:
        """``flush()``, then stop the writer thread."""
        try:
            return self.flush()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._thread.join()

    def _raise_error(self):
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self):
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                (step, tree, text), self._pending = self._pending, None
                self._busy = True
            try:
                path = save(
                    self.directory, step, tree, json.loads(text), keep=self.keep
                )
            except Exception as error:  # noqa: BLE001 (re-raised in the training thread)
                with self._cond:
                    self._error = error
                    self._busy = False
                    self._cond.notify_all()
                continue
            with self._cond:
                self.last_path = path
                self._busy = False
                self._cond.notify_all()
