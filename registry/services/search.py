"""Searching as a viewer: the policy chooses the tier's index, the engine searches it, and every hit
is re-read from the database through the policy before anything of it is shown."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import policy, search
from ..db import session
from ..models import File, Record
from ..policy import Viewer
from ..search import engine
from .records.read import RecordFilters
from .records.shape import Projection, project

TIME_LIMIT_S = 2.0

@dataclass(frozen=True)
class SearchParams(RecordFilters):
    """What the viewer asked for: the browse filters, free text, an order and a page."""

    q: str = ""
    sort: str = "relevance"
    page: int = 1
    per_page: int = 20


@dataclass
class Hit:
    """One result: what the viewer may see of the record, a highlighted snippet, the files that matched."""

    record: Projection
    snippet: Markup
    matched_files: list[Any] = field(default_factory=list)


@dataclass
class SearchResults:
    """A page of results with facet counts, an optional suggestion, and whether time ran out."""

    hits: list[Hit]
    total: int
    page: int
    per_page: int
    facets: dict[str, Counter]
    suggestion: str | None = None
    partial: bool = False

    @property
    def pages(self) -> int:
        """How many pages there are."""
        return max(1, math.ceil(self.total / self.per_page))


def run_search(viewer: Viewer | None, params: SearchParams) -> SearchResults:
    """Search what ``viewer`` may see. The tier index is chosen by the policy, never by the query text."""
    tier = policy.tier_of(viewer)
    if tier is None:
        return SearchResults(hits=[], total=0, page=params.page, per_page=params.per_page, facets={})
    found = engine.search(
        search.indexes(),
        session,
        tier,
        params.q,
        params.active(),
        by_date=params.sort == "date",
        offset=(params.page - 1) * params.per_page,
        limit=params.per_page,
        time_limit=TIME_LIMIT_S,
    )
    return SearchResults(
        hits=_hydrate(viewer, found.ids, found.highlight),
        total=found.total,
        page=params.page,
        per_page=params.per_page,
        facets=found.facets,
        suggestion=found.suggestion,
        partial=found.partial,
    )


def _hydrate(viewer: Viewer | None, ids: list[str], wanted: set[str]) -> list[Hit]:
    """Re-read the hits from the database through the policy, in rank order; build snippets."""
    if not ids:
        return []
    # Looked up by primary key, then checked one by one with the same rule as everywhere else.
    stmt = select(Record).where(Record.id.in_(ids)).options(selectinload(Record.files).undefer(File.text))
    records = {r.id: r for r in session.scalars(stmt) if policy.can(viewer, "view", r)}
    hits = []
    for record_id in ids:
        record = records.get(record_id)
        if record is None:
            continue
        view = project(record, viewer)
        snippet, found = engine.snippet(view.summary or view.title, wanted)
        visible_files = {f.id: f for f in view.files}
        matched = []
        for file in record.files:
            readable = file.id in visible_files and wanted and file.text
            if readable and engine.first_hit(file.text, wanted) is not None:
                matched.append(visible_files[file.id])
                if not found:
                    snippet, found = engine.snippet(file.text, wanted)
        hits.append(Hit(record=view, snippet=snippet, matched_files=matched))
    return hits
