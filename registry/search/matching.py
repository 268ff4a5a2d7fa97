"""Evaluating a parsed query on one segment, a block of postings at a time.

Whoosh's matchers step through postings one Python call at a time, several calls per posting and
more for AND and OR trees and for segments with deletions: at 100,000 records a two-word query
visits tens of thousands of postings that way. The queries ``query.parse`` builds are only terms
combined by AND, OR and AND NOT (or every document), so here each term's postings are read whole,
a block at a time, and combined as dictionaries of docnum → score. The score is Whoosh's own
BM25F, with the index's own statistics, summed over the matching terms as Whoosh's matchers do,
so the ranking is the one Whoosh would give.
"""

from __future__ import annotations

from array import array
from typing import Any

from whoosh.codec.whoosh3 import W3LeafMatcher, _lenfield
from whoosh.matching.wrappers import FilterMatcher
from whoosh.query import And, AndNot, Every, NullQuery, Or, Query, Term
from whoosh.util.numeric import byte_to_length

# A field-length byte decoded, for every byte.
_LENGTH = [byte_to_length(b) for b in range(256)]


def scores(top: Any, reader: Any, query: Query) -> dict[int, float]:
    """The documents of the segment ``reader`` that match ``query``, with their scores.

    ``top`` is the searcher of the whole index, whose statistics (IDF, average field lengths)
    every segment shares. Deleted documents are left out. Raises TypeError for a kind of query
    that ``query.parse`` never builds.
    """
    deleted = reader.deleted_docs_set if reader.has_deletions() else frozenset()
    found = _evaluate(top, reader, query)
    if deleted:
        for docnum in deleted & found.keys():
            del found[docnum]
    return found


def _evaluate(top: Any, reader: Any, query: Query) -> dict[int, float]:
    if isinstance(query, Term):
        return _term(top, reader, query.fieldname, query.text)
    if isinstance(query, And):
        parts = sorted((_evaluate(top, reader, q) for q in query.subqueries), key=len)
        result = parts[0]
        for other in parts[1:]:
            result = {d: s + other[d] for d, s in result.items() if d in other}
        return result
    if isinstance(query, Or):
        result: dict[int, float] = {}
        for part in (_evaluate(top, reader, q) for q in query.subqueries):
            if not result:
                result = part
                continue
            get = result.get
            result.update({d: s + get(d, 0.0) for d, s in part.items()})
        return result
    if isinstance(query, AndNot):
        positive = _evaluate(top, reader, query.a)
        negative = _evaluate(top, reader, query.b)
        return {d: s for d, s in positive.items() if d not in negative}
    if isinstance(query, Every):
        return dict.fromkeys(range(reader.doc_count_all()), 0.0)
    if query is NullQuery or isinstance(query, type(NullQuery)):
        return {}
    raise TypeError(f"not a query the search builds: {query!r}")


def _term(top: Any, reader: Any, fieldname: str, text: str) -> dict[int, float]:
    """The BM25F score of one term in every document of the segment that holds it."""
    if (fieldname, text) not in reader:
        return {}
    ids, weights = _postings(reader.postings(fieldname, text))
    weighting = top.weighting
    idf = top.idf(fieldname, text)
    avgfl = top.avg_field_length(fieldname) or 1
    k1, b = weighting.K1, weighting._field_B.get(fieldname, weighting.B)
    # bm25 = idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avgfl)), as in whoosh.scoring.
    top_factor, floor, slope = idf * (k1 + 1), k1 * (1 - b), k1 * b / avgfl
    held = reader._perdoc._readers.get(_lenfield(fieldname))
    if isinstance(held, bytes):
        # The length bytes the searcher holds in memory (``index._open_columns``).
        decode = _LENGTH
        return {
            d: top_factor * w / (w + floor + slope * decode[held[d]])
            for d, w in zip(ids, weights, strict=True)
        }
    length = reader.doc_field_length
    return {
        d: top_factor * w / (w + floor + slope * length(d, fieldname, 1))
        for d, w in zip(ids, weights, strict=True)
    }


def _postings(matcher: Any) -> tuple[list[int], array]:
    """Every (docnum, weight) of a term's postings: whole blocks at a time when stored in blocks."""
    if isinstance(matcher, FilterMatcher):
        # Deleted documents are taken out once per query, not once per posting.
        matcher = matcher.child
    ids: list[int] = []
    weights = array("f")
    if isinstance(matcher, W3LeafMatcher):
        while True:
            matcher._read_ids()
            matcher._read_weights()
            ids.extend(matcher._ids)
            weights.extend(matcher._weights)
            if matcher._lastblock:
                return ids, weights
            matcher._goto(matcher._nextoffset)
    # A rare term's postings are kept inline with the term, in a small list matcher.
    while matcher.is_active():
        ids.append(matcher.id())
        weights.append(matcher.weight())
        matcher.next()
    return ids, weights
