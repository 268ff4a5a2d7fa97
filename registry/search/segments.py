"""The segments of a tier's Whoosh index: opening a searcher whose files a merge cannot take away,
and the two merge policies (purge the text a change took out of a tier; merge small segments)."""

from __future__ import annotations

from typing import Any

from whoosh.codec.whoosh3 import LENGTHS_COLUMN, STORED_COLUMN, _lenfield
from whoosh.searching import Searcher


def rewrite_with_deletions(writer, segments):  # type: ignore[no-untyped-def]
    """A Whoosh merge policy that rewrites every segment holding deleted documents, dropping their terms."""
    from whoosh.reading import SegmentReader

    kept = []
    for segment in segments:
        if segment.has_deletions():
            reader = SegmentReader(writer.storage, writer.schema, segment)
            writer.add_reader(reader)
            reader.close()
        else:
            kept.append(segment)
    return kept


MERGE_FACTOR = 10


def small_group(segments: list[Any]) -> list[Any]:
    """The ten or more segments of the same order of size (never the largest one) due for a merge, or []."""
    if len(segments) < MERGE_FACTOR:
        return []
    largest = max(segments, key=lambda s: s.doc_count_all())
    levels: dict[int, list[Any]] = {}
    for segment in segments:
        if segment is not largest:
            levels.setdefault(len(str(max(1, segment.doc_count_all()))), []).append(segment)
    return next((levels[level] for level in sorted(levels) if len(levels[level]) >= MERGE_FACTOR), [])


def merge_small(writer, segments):  # type: ignore[no-untyped-def]
    """A tiered merge policy: merge ten segments of the same order of size, never the largest one.

    Whoosh's default policy sometimes rewrites a large segment after a one-document commit, which
    stalls that commit (and readers in the same process) for seconds at 10,000 records. Here a
    document is rewritten about once per order of magnitude, and most commits merge nothing.
    """
    from whoosh.reading import SegmentReader

    group = small_group(segments)
    for segment in group:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        writer.add_reader(reader)
        reader.close()
    return [s for s in segments if s not in group]


# The fields whose lengths scoring reads (BM25 normalises by them).
_SCORED_FIELDS = ("body", "pairs")
OPEN_ATTEMPTS = 5


def open_searcher(ix: Any) -> Searcher:
    """A searcher of ``ix`` with every file it will read already open.

    Whoosh opens a segment's stored-fields and field-length columns only when first read. With
    separate segment files, a writer in another process may merge that segment and delete its files
    in between; a file opened before the deletion stays readable (POSIX), one opened after is gone.
    So the columns are opened here, and a searcher caught by a merge while opening is dropped and
    opened again on the newer table of contents. Raises the last error if that keeps happening.
    """
    for attempt in range(OPEN_ATTEMPTS):
        searcher = None
        try:
            searcher = ix.searcher()
            for leaf, _base in searcher.reader().leaf_readers():
                _open_columns(leaf)
            return searcher
        except (OSError, _ColumnGone):
            if searcher is not None:
                searcher.close()
            if attempt == OPEN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class _ColumnGone(Exception):
    """A column file of a segment was deleted before it could be opened."""


def _open_columns(leaf: Any) -> None:
    if leaf.doc_count_all() == 0:
        return
    perdoc = leaf._perdoc
    if perdoc._cached_reader("_stored", STORED_COLUMN) is None:
        raise _ColumnGone(leaf.segment())
    for name in _SCORED_FIELDS:
        # A field no document of the segment has has no length column: nothing to open then.
        if perdoc.has_column(_lenfield(name)):
            column = perdoc._cached_reader(_lenfield(name), LENGTHS_COLUMN)
            # Scoring reads a length byte per match; one read of the whole column instead of a file
            # read per match (same values: a one-byte column, missing tail bytes are the default 0).
            held = column._dbfile.get(column._basepos, column._count)
            perdoc._readers[_lenfield(name)] = held + bytes(max(0, column._doccount - len(held)))
