"""The search engine: one tier's index searched for a query, with exact counts, facets, suggestions
and snippets.

It knows Whoosh and the index's layout (``TierIndexes``, the stored facet columns, the segment
readers); it knows nothing of viewers. ``services.search`` chooses the tier through the policy and
re-reads the hits from the database through it; nothing here decides what anyone may see, as each
tier's index holds only what everyone at that tier may (``documents``).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from heapq import heappush, heapreplace
from itertools import chain
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from . import matching
from .analysis import WORD, fold, nfc, term
from .documents import FACET_NAMES
from .index import TierIndexes
from .query import parse

SNIPPET_WORDS = 28


@dataclass
class Found:
    """What a search found in one tier: a page of ids in order, the exact total and facet counts, a
    'did you mean', the words to highlight, and whether the time limit cut the pass short."""

    ids: list[str]
    total: int
    facets: dict[str, Counter]
    highlight: set[str]
    suggestion: str | None = None
    partial: bool = False


def search(
    indexes: TierIndexes,
    session: Session,
    tier: str,
    text: str,
    filters: dict[str, Any],
    by_date: bool,
    offset: int,
    limit: int,
    time_limit: float,
) -> Found:
    """Search ``tier``'s index for ``text``: ``limit`` ids from ``offset``, by score (or newest first
    when ``by_date`` or there is no text), among the documents whose facets match ``filters``."""
    indexes.before_search(session)
    # The searcher is lent for the index work only; the database and the snippets come after.
    with indexes.searcher(tier) as searcher:
        parsed = parse(text, searcher.reader())
        by_date = by_date or parsed.empty
        deadline = time.monotonic() + time_limit
        scored = not by_date
        found, partial = _collect(indexes, searcher, parsed.query, filters, offset + limit, scored, deadline)
        total = len(found.kept)
        suggestion = None
        if parsed.words and total < 3:
            suggestion = _suggest(indexes, tier, searcher, nfc(text), parsed.words)
    if by_date:
        newest = sorted(found.kept, key=lambda entry: entry[1], reverse=True)
        ids = [entry[2] for entry in newest[offset : offset + limit]]
    else:
        ids = found.ranked_ids()[offset : offset + limit]
    return Found(
        ids=ids,
        total=total,
        facets=_count(found.kept),
        highlight=parsed.highlight,
        suggestion=suggestion,
        partial=partial,
    )


def _segment_columns(indexes: TierIndexes, leaf) -> list[tuple[Any, str, str]]:  # type: ignore[no-untyped-def]
    """Facets, sort key and id of every document of one segment, by docnum; cached (segments never change)."""
    reader = leaf.reader()
    segment = reader.segment()
    key = segment.segment_id() if segment is not None else None
    values = indexes.columns.get(key) if key else None
    if values is None:
        values = []
        for docnum in range(reader.doc_count_all()):
            stored = reader.stored_fields(docnum) if not reader.is_deleted(docnum) else {}
            values.append((stored.get("facets"), stored.get("sort", ""), stored.get("id")))
        if key:
            indexes.columns[key] = values
    return values


@dataclass
class _Matches:
    """Every match that passed the facet filters (facets, sort key, id), and the best-scoring ones."""

    kept: list[tuple[Any, str, str]] = field(default_factory=list)
    best: list[tuple[float, int, str]] = field(default_factory=list)

    def ranked_ids(self) -> list[str]:
        """The ids of the best-scoring documents, best first (also after running out of time)."""
        return [record_id for _score, _order, record_id in sorted(self.best, reverse=True)]


def _collect(
    indexes: TierIndexes,
    searcher,  # type: ignore[no-untyped-def]
    query,
    filters: dict[str, Any],
    limit: int,
    scored: bool,
    deadline: float,
) -> tuple[_Matches, bool]:
    """One pass over every match of every segment: the filters, the facets, the top ``limit`` scores.

    Every match is seen, so totals and facets are exact. Returns the matches and whether the time
    limit cut the pass short (what was seen until then is kept).
    """
    found = _Matches()
    kept, best = found.kept, found.best
    seen = 0
    for subsearcher, offset in searcher.leaf_searchers():
        values = _segment_columns(indexes, subsearcher)
        for docnum, score in matching.scores(searcher, subsearcher.reader(), query).items():
            seen += 1
            if seen % 1024 == 0 and time.monotonic() > deadline:
                return found, True
            entry = values[docnum]
            if entry[0] is None or (filters and not _matches(entry[0], filters)):
                continue
            kept.append(entry)
            if scored:
                # A heap of the best (score, -docnum, id): among equal scores the lower document first.
                if len(best) < limit:
                    heappush(best, (score, -(offset + docnum), entry[2]))
                elif score > best[0][0]:
                    heapreplace(best, (score, -(offset + docnum), entry[2]))
        if time.monotonic() > deadline:
            return found, True
    return found, False


def _count(kept: list[tuple[Any, str, str]]) -> dict[str, Counter]:
    counts: dict[str, Counter] = {}
    for position, name in enumerate(FACET_NAMES):
        column = [entry[0][position] for entry in kept]
        multi = bool(column) and isinstance(column[0], tuple)
        counts[name] = Counter(chain.from_iterable(column) if multi else column)
    return counts


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


def first_hit(text: str, wanted: set[str]) -> int | None:
    """The offset of the first word of ``text`` that matches a query term, or None (stops early)."""
    for match in WORD.finditer(nfc(text)):
        if term(match.group()) in wanted:
            return match.start()
    return None


def snippet(text: str, wanted: set[str]) -> tuple[Markup, int]:
    """A short escaped excerpt of ``text`` around the most query terms, terms in <mark>."""
    text = nfc(text)
    first = first_hit(text, wanted) if wanted else None
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


def _suggest(indexes: TierIndexes, tier: str, searcher, text: str, words: list[str]) -> str | None:  # type: ignore[no-untyped-def]
    """'Did you mean': the query with each unknown word replaced by the closest word of this tier's index."""
    reader = searcher.reader()
    suggestion = text
    for word in dict.fromkeys(words):
        folded = fold(word)
        if reader.frequency("words", folded) == 0:
            options = indexes.suggestions.options(tier, searcher, folded)
            if options:
                suggestion = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", options[0], suggestion)
    return suggestion if suggestion != text else None
