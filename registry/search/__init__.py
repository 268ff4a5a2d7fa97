"""Full-text search: one Whoosh index per tier (``index.py``), fed from the outbox (``outbox.py``) by
each worker's applier thread (``applier.py``), searched by ``engine.py``."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app

from .applier import Applier
from .index import TierIndexes
from .outbox import dependents, enqueue

__all__ = ["TierIndexes", "dependents", "enqueue", "indexes", "init_app"]


def init_app(app: Flask) -> None:
    """Give the application its indexes (one set per ``INDEX_DIR``)."""
    folder = Path(app.config["INDEX_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    indexes = TierIndexes(folder, app.config["REINDEX_MEMORY_MB"])
    indexes.applier = Applier(app)
    app.extensions["registry.search"] = indexes
    if app.config["INDEX_APPLY"] == "applier":
        # Every worker that serves requests keeps its node's indexes up with the outbox.
        app.before_request(indexes.applier.ensure_running)


def indexes() -> TierIndexes:
    """The indexes of the current application."""
    return current_app.extensions["registry.search"]
