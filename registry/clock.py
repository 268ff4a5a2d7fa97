"""The application's clock: the one place accounts code asks for the time, so tests can move it.

Callers use ``clock.utcnow()`` (a module attribute lookup at call time), never ``from .clock import
utcnow``: a test that monkeypatches ``registry.clock.utcnow`` then moves time for every caller,
including a live server running in another thread.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """The current time as naive UTC, like every timestamp stored in the database."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
