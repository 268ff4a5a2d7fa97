"""Full-text search: one Whoosh index per tier, fed from the outbox (see ``index.py``)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from ..db import after_commit, session
from ..models import IndexJob
from .index import TierIndexes


def init_app(app: Flask) -> None:
    """Give the application its indexes (one set per ``INDEX_DIR``)."""
    folder = Path(app.config["INDEX_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    app.extensions["registry.search"] = TierIndexes(folder, app.config["REINDEX_MEMORY_MB"])


def indexes() -> TierIndexes:
    """The indexes of the current application."""
    return current_app.extensions["registry.search"]


def enqueue(record_id: str, purge: bool = False) -> None:
    """Write an index job for ``record_id`` in the current transaction; apply it once that commits.

    ``purge`` when text is leaving a tier (a tier was raised): the index then also forgets its words.
    """
    session.add(IndexJob(record_id=record_id, purge=purge))
    pending = session.info.setdefault("index_jobs", set())
    if not pending:
        after_commit(_apply_after_commit)
    pending.add(record_id)


def _apply_after_commit() -> None:
    session.info.pop("index_jobs", None)
    indexes().catch_up(session)
