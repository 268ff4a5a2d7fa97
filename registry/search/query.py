"""The user's search syntax, turned into Whoosh queries without ever naming a field or a tier.

Supported: words (all must match), "quoted phrases", prefix* (3 characters at least, expanded to
a capped number of terms), OR between two clauses, NOT or a leading minus to exclude. Anything
else, such as ``tier:confidential``, is just more words: the user's text can only narrow a
search within the index the viewer was given, never widen it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from whoosh.query import And, AndNot, Every, NullQuery, Or, Query, Term

from .analysis import fold, nfc, pairs, terms

MAX_PREFIX_TERMS = 64
MIN_PREFIX = 3
MAX_CLAUSES = 32
_TOKEN = re.compile(r'"([^"]*)"?|(\S+)')


@dataclass
class Parsed:
    """A parsed query: the Whoosh query, the terms to highlight, and the plain words for suggestions."""

    query: Query
    highlight: set[str] = field(default_factory=set)
    words: list[str] = field(default_factory=list)
    empty: bool = False


def _word_query(stemmed: list[str]) -> Query:
    clauses = [Term("body", t) for t in stemmed]
    return clauses[0] if len(clauses) == 1 else And(clauses)


def _phrase_query(text: str) -> tuple[Query, list[str]]:
    stemmed = terms(text)
    if len(stemmed) <= 1:
        return (_word_query(stemmed) if stemmed else NullQuery), stemmed
    return And([Term("pairs", p) for p in pairs(text)]), stemmed


def _prefix_query(raw: str, reader) -> tuple[Query, list[str]]:  # type: ignore[no-untyped-def]
    prefix = "".join(fold(w) for w in re.findall(r"\w+", nfc(raw)))
    if len(prefix) < MIN_PREFIX:
        stemmed = terms(raw)
        return (_word_query(stemmed) if stemmed else NullQuery), stemmed
    expanded = []
    for term in reader.expand_prefix("body", prefix):
        expanded.append(term.decode() if isinstance(term, bytes) else term)
        if len(expanded) >= MAX_PREFIX_TERMS:
            break
    if not expanded:
        return NullQuery, []
    return Or([Term("body", t) for t in expanded]), expanded


def parse(text: str, reader) -> Parsed:  # type: ignore[no-untyped-def]
    """Parse the user's ``text`` against ``reader`` (prefixes expand to the terms this index holds)."""
    text = nfc(text or "").strip()[:500]
    positives: list[Query] = []
    negatives: list[Query] = []
    highlight: set[str] = set()
    words: list[str] = []
    negate = join_or = False
    for match in list(_TOKEN.finditer(text))[: MAX_CLAUSES * 2]:
        phrase, token = match.group(1), match.group(2)
        if phrase is None and token in ("OR", "|"):
            join_or = bool(positives)
            continue
        if phrase is None and token in ("AND", "&&"):
            continue
        if phrase is None and token == "NOT":
            negate = True
            continue
        if phrase is None and token.startswith("-") and len(token) > 1:
            negate, token = True, token[1:]
        if phrase is not None:
            clause, found = _phrase_query(phrase)
        elif token.endswith("*"):
            clause, found = _prefix_query(token.rstrip("*"), reader)
        else:
            stemmed = terms(token)
            if not stemmed:
                negate = join_or = False
                continue
            clause, found = _word_query(stemmed), stemmed
            words.extend(w for w in re.findall(r"\w+", token))
        if negate:
            negatives.append(clause)
        elif join_or and positives:
            previous = positives.pop()
            positives.append(Or([previous, clause]))
            highlight.update(found)
        else:
            positives.append(clause)
            highlight.update(found)
        negate = join_or = False
    if not positives and not negatives:
        return Parsed(query=Every(), empty=True)
    query: Query = And(positives) if len(positives) > 1 else (positives[0] if positives else Every())
    if negatives:
        query = AndNot(query, Or(negatives) if len(negatives) > 1 else negatives[0])
    return Parsed(query=query, highlight=highlight, words=words)
