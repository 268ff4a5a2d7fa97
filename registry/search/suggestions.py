"""'Did you mean': the words of one tier's index closest to a word it lacks, kept per index version.

Whoosh finds close words by walking a Levenshtein automaton over the on-disk word list, a few
thousand small reads a word (10–40 ms on 5,000 records). The answer depends only on the searcher's
segments and their deletions, so it is kept under exactly that: a later version of the index (a
document added, changed or deleted) has another key and is asked afresh. Each tier's searchers are
keyed apart, so one tier's words never answer another's question.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from whoosh.query import Term

FIELD = "words"
KEPT = 4096


def version(searcher: Any) -> tuple[tuple[str, int], ...]:
    """What the searcher's words depend on: each segment's id and how many of its documents are deleted."""
    key = []
    for leaf, _base in searcher.reader().leaf_readers():
        segment = leaf.segment()
        if segment is not None:
            key.append((segment.segment_id(), segment.deleted_count()))
    return tuple(key)


class Suggestions:
    """Close words per (tier, index version, word), the ``KEPT`` most recently asked for."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._lock = threading.Lock()
        self._options: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()

    def options(self, tier: str, searcher: Any, word: str) -> list[str]:
        """Up to five words a live document of this index has, within two edits of ``word``
        (which is folded and absent from the index), most frequent first."""
        key = (tier, version(searcher), word)
        with self._lock:
            if key in self._options:
                self._options.move_to_end(key)
                return self._options[key]
        corrector = searcher.corrector(FIELD)
        # The word list can still hold words of deleted documents: offer only words a live document has.
        found = [
            option
            for option in corrector.suggest(word, limit=5, maxdist=2, prefix=1)
            if any(True for _ in searcher.docs_for_query(Term(FIELD, option)))
        ]
        with self._lock:
            self._options[key] = found
            while len(self._options) > self.kept:
                self._options.popitem(last=False)
        return found
