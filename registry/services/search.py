"""Searching as a viewer: the tier's index, facets in one pass, results re-read through the policy."""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from whoosh.collectors import TimeLimit, TimeLimitCollector
from whoosh.query import Term

from .. import policy, search
from ..db import session
from ..models import File, Record
from ..policy import Projection, Viewer
from ..search.analysis import WORD, fold, nfc, term
from ..search.documents import FACET_NAMES
from ..search.query import parse

TIME_LIMIT_S = 2.0
SNIPPET_WORDS = 28


@dataclass(frozen=True)
class SearchParams:
    """What the viewer asked for."""

    q: str = ""
    type: str | None = None
    party: str | None = None
    region: str | None = None
    language: str | None = None
    taxon: str | None = None
    year: int | None = None
    sort: str = "relevance"
    page: int = 1
    per_page: int = 20

    def filters(self) -> dict[str, Any]:
        """The facet filters that are set."""
        return {name: getattr(self, name) for name in FACET_NAMES if getattr(self, name) not in (None, "")}


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


def _columns(indexes: search.TierIndexes, searcher) -> list[tuple[Any, str]]:  # type: ignore[no-untyped-def]
    """Facets and sort key of every document, by docnum, cached per immutable segment."""
    cache = indexes.columns
    out: list[tuple[Any, str]] = []
    for leaf, _offset in searcher.leaf_searchers():
        reader = leaf.reader()
        segment = reader.segment()
        key = segment.segment_id() if segment is not None else None
        values = cache.get(key) if key else None
        if values is None:
            values = []
            for docnum in range(reader.doc_count_all()):
                stored = reader.stored_fields(docnum) if not reader.is_deleted(docnum) else {}
                values.append((stored.get("facets"), stored.get("sort", ""), stored.get("id")))
            if key:
                cache[key] = values
        out.extend(values)
    return out


def _matches(facets: Any, filters: dict[str, Any]) -> bool:
    for position, name in enumerate(FACET_NAMES):
        wanted = filters.get(name)
        if wanted in (None, ""):
            continue
        value = facets[position]
        if isinstance(value, tuple):
            if wanted not in value:
                return False
        elif value != wanted:
            return False
    return True


def _first_hit(text: str, wanted: set[str]) -> int | None:
    """The offset of the first word of ``text`` that matches a query term, or None (stops early)."""
    for match in WORD.finditer(nfc(text)):
        if term(match.group()) in wanted:
            return match.start()
    return None


def _snippet(text: str, wanted: set[str]) -> tuple[Markup, int]:
    """A short escaped excerpt of ``text`` around the most query terms, terms in <mark>."""
    text = nfc(text)
    first = _first_hit(text, wanted) if wanted else None
    if first is not None and first > 400:
        # Only the neighbourhood of the first hit is read: long documents stay cheap.
        text = text[first - 200 :]
    words = list(WORD.finditer(text, 0, 20000))
    if not words:
        return Markup(""), 0
    hits = [i for i, m in enumerate(words) if term(m.group()) in wanted]
    start = 0
    if hits:
        best = max(hits, key=lambda i: sum(1 for j in hits if i <= j < i + SNIPPET_WORDS))
        start = max(0, best - 4)
    window = words[start : start + SNIPPET_WORDS]
    pieces: list[str] = ["… " if start or first else ""]
    cursor = window[0].start()
    hit_set = set(hits)
    for index, match in enumerate(window, start=start):
        pieces.append(str(escape(text[cursor : match.start()])))
        word = str(escape(match.group()))
        pieces.append(f"<mark>{word}</mark>" if index in hit_set else word)
        cursor = match.end()
    if start + SNIPPET_WORDS < len(words):
        pieces.append(" …")
    return Markup("".join(pieces)), len(hits)


def run_search(viewer: Viewer | None, params: SearchParams) -> SearchResults:
    """Search what ``viewer`` may see. The tier index is chosen by the policy, never by the query text."""
    tier = policy.tier_of(viewer)
    if tier is None:
        return SearchResults(hits=[], total=0, page=params.page, per_page=params.per_page, facets={})
    indexes = search.indexes()
    if indexes.behind(session):
        indexes.catch_up(session, writer_timeout=0.5)
    searcher = indexes.searcher(tier)
    parsed = parse(params.q, searcher.reader())
    deadline = time.monotonic() + TIME_LIMIT_S
    partial = False
    columns = _columns(indexes, searcher)
    filters = params.filters()
    allowed: list[int] = []
    counts: dict[str, Counter] = {name: Counter() for name in FACET_NAMES}
    for count, docnum in enumerate(searcher.docs_for_query(parsed.query)):
        facets = columns[docnum][0]
        if facets is None:
            continue
        if count % 512 == 0 and time.monotonic() > deadline:
            partial = True
            break
        if not _matches(facets, filters):
            continue
        allowed.append(docnum)
        for position, name in enumerate(FACET_NAMES):
            value = facets[position]
            counts[name].update(value if isinstance(value, tuple) else (value,))
    total = len(allowed)
    offset = (params.page - 1) * params.per_page
    if params.sort == "date" or parsed.empty:
        ordered = sorted(allowed, key=lambda d: columns[d][1], reverse=True)[
            offset : offset + params.per_page
        ]
        ids = [columns[d][2] for d in ordered]
    else:
        collector = TimeLimitCollector(
            searcher.collector(limit=offset + params.per_page, filter=set(allowed)),
            timelimit=max(0.05, deadline - time.monotonic()),
            use_alarm=False,
        )
        try:
            searcher.search_with_collector(parsed.query, collector)
        except TimeLimit:
            partial = True
        ids = [hit["id"] for hit in collector.results()[offset : offset + params.per_page]]
    hits = _hydrate(viewer, ids, parsed.highlight)
    suggestion = _suggest(searcher, nfc(params.q), parsed.words) if parsed.words and total < 3 else None
    return SearchResults(
        hits=hits,
        total=total,
        page=params.page,
        per_page=params.per_page,
        facets=counts,
        suggestion=suggestion,
        partial=partial,
    )


def _hydrate(viewer: Viewer | None, ids: list[str], wanted: set[str]) -> list[Hit]:
    """Re-read the hits from the database through the policy, in rank order; build snippets."""
    if not ids:
        return []
    stmt = policy.visible(select(Record), viewer).where(Record.id.in_(ids))
    stmt = stmt.options(selectinload(Record.files).undefer(File.text))
    records = {r.id: r for r in session.scalars(stmt)}
    hits = []
    for record_id in ids:
        record = records.get(record_id)
        if record is None:
            continue
        view = policy.project(record, policy.tier_for(viewer, record))
        snippet, found = _snippet(view.summary or view.title, wanted)
        visible_files = {f.id: f for f in view.files}
        matched = []
        for file in record.files:
            readable = file.id in visible_files and wanted and file.text
            if readable and _first_hit(file.text, wanted) is not None:
                matched.append(visible_files[file.id])
                if not found:
                    snippet, found = _snippet(file.text, wanted)
        hits.append(Hit(record=view, snippet=snippet, matched_files=matched))
    return hits


def _suggest(searcher, text: str, words: list[str]) -> str | None:  # type: ignore[no-untyped-def]
    """'Did you mean': the query with each unknown word replaced by the closest word of this tier's index."""
    corrector = searcher.corrector("words")
    reader = searcher.reader()
    suggestion = text
    for word in dict.fromkeys(words):
        folded = fold(word)
        if reader.frequency("words", folded) == 0:
            # The word list can still hold words of deleted documents: offer only words a live document has.
            options = [
                option
                for option in corrector.suggest(folded, limit=5, maxdist=2, prefix=1)
                if any(True for _ in searcher.docs_for_query(Term("words", option)))
            ]
            if options:
                suggestion = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", options[0], suggestion)
    return suggestion if suggestion != text else None
