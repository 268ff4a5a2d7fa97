"""A thread of each worker process that does one job in the background, again and again.

The mail courier (``mail.Courier``) and the index applier (``search.applier.Applier``) are such
threads: woken after a commit that gave them work, and every ``poll_seconds`` in case another
process or node did. Each is started in the process that uses it, when first needed (a thread does
not survive a fork), and outlives any one failure of its job.
"""

from __future__ import annotations

import os
import threading

from flask import Flask

from .db import rollback


class WorkerThread:
    """Runs ``work()`` in an app context of ``app`` in a daemon thread, when woken and every
    ``poll_seconds``; ``rounds`` is notified after each run."""

    name = "worker"
    poll_seconds = 30.0

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.rounds = threading.Condition()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def work(self) -> None:
        """One round of the job, inside an app context."""
        raise NotImplementedError

    def ensure_running(self) -> None:
        """Start the thread in this process if it is not running (it does a round at once)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._stopped = False
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def wake(self) -> None:
        """Have the thread do a round now, starting it if need be."""
        self.ensure_running()
        self._wake.set()

    def stop(self) -> None:
        """End the thread after its round (a test's app goes away; a worker exits anyway)."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.clear()
            try:
                with self.app.app_context():
                    self.work()
            except Exception:  # the thread must outlive any one failure (the database restarting)
                self.app.logger.exception("The %s thread's round failed", self.name)
                try:
                    with self.app.app_context():
                        rollback()
                except Exception:
                    pass
            with self.rounds:
                self.rounds.notify_all()
            self._wake.wait(self.poll_seconds)
