"""The node's applier: a thread of each worker that applies outbox jobs to the indexes.

After a commit that wrote index jobs, the request wakes it and returns; it never applies them
itself. (Under testing, ``INDEX_APPLY = "inline"``, the commit applies them at once, so a test reads
its own change; so does a command, whose thread would die with it.) A search never writes an index
either: when the indexes are behind the outbox it wakes this thread and waits for it
(``TierIndexes.before_search``), briefly for new text, and longer when a job takes text out of a
tier or an index is missing, so that a reclassified record never counts in anyone's results. Among
the processes of a node one applies at a time (the lock file of ``index._applier_lock``); the
others' threads find the work done.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..background import WorkerThread
from ..db import session

# How often an idle applier looks for jobs that other processes or nodes committed.
POLL_SECONDS = 5.0


class Applier(WorkerThread):
    """One thread per process applying the outbox to ``app``'s indexes; started when first needed,
    woken after each commit that wrote jobs."""

    name = "index-applier"
    poll_seconds = POLL_SECONDS

    def work(self) -> None:
        from . import indexes

        indexes().catch_up(session)

    def wait_for(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wake the thread and wait until ``done()`` (read after each of its rounds, and every few
        milliseconds, as another process may be the one applying), at most ``timeout`` seconds."""
        self.wake()
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self.rounds:
                self.rounds.wait(min(remaining, 0.02))
        return True
