"""The node's applier: a thread of each worker that applies outbox jobs to the indexes.

After a commit that wrote index jobs, the request wakes it and returns; it never applies them
itself (``INDEX_APPLY = "inline"`` under testing applies them right after commit, so a test reads
its own change at once). A search never writes an index either: when the indexes are behind the
outbox it wakes this thread and waits for it (``TierIndexes.before_search``), briefly for new text,
and longer when a job takes text out of a tier or an index is missing, so that a reclassified record
never counts in anyone's results. Among the processes of a node one applies at a time (the lock
file of ``index._applier_lock``); the others' threads find the work done.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from flask import Flask

from ..db import rollback, session

# How often an idle applier looks for jobs that other processes or nodes committed.
POLL_SECONDS = 5.0


class Applier:
    """One thread per process applying the outbox to ``app``'s indexes; started when first needed
    (a thread does not survive a fork), woken after each commit that wrote jobs."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._rounds = threading.Condition()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def ensure_running(self) -> None:
        """Start the thread in this process if it is not running."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._stopped = False
                self._thread = threading.Thread(target=self._run, name="index-applier", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        """Have the thread apply what the outbox holds now, starting it if need be."""
        self.ensure_running()
        self._wake.set()

    def wait_for(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wake the thread and wait until ``done()`` (read after each of its rounds, and every few
        milliseconds, as another process may be the one applying), at most ``timeout`` seconds."""
        self.wake()
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._rounds:
                self._rounds.wait(min(remaining, 0.02))
        return True

    def stop(self) -> None:
        """End the thread after its round (a test's app goes away; a worker exits anyway)."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    def _run(self) -> None:
        from . import indexes

        while not self._stopped:
            self._wake.clear()
            try:
                with self.app.app_context():
                    indexes().catch_up(session)
            except Exception:  # the applier must outlive any one failure (the database restarting)
                self.app.logger.exception("Applying index jobs failed")
                try:
                    with self.app.app_context():
                        rollback()
                except Exception:
                    pass
            with self._rounds:
                self._rounds.notify_all()
            self._wake.wait(POLL_SECONDS)
