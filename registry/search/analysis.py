"""Text analysis shared by indexing, queries and snippets: NFC, accent folding, light multilingual stemming.

One analyzer serves English, French and Spanish: a query costs the same whatever the language,
and a French query still finds Spanish material with the same word. The stemmer only strips
plurals and the commonest inflections, which is what a searcher expects ("tortues" finds
"tortue", "decomisos" finds "decomiso", "protege" finds "protégé", "rescue centres" finds
"rescue centre"); a full Snowball stemmer per language would need one field per language and
triple the cost of every query.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from whoosh.analysis import Analyzer, Filter, RegexTokenizer, Token

WORD = re.compile(r"\w+", re.UNICODE)
# Between the parts of a document's text (its title, summary, each file...): phrase pairs never span
# two parts, so a phrase is found only where its words follow each other, and a part that leaves a
# document takes exactly its own pairs with it.
PART = "\x1e"
_WORD_OR_PART = r"\w+|\x1e"
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "đ": "d", "ł": "l", "ı": "i"})

# Words too common in the three languages to help a search.
STOPWORDS = frozenset(
    """a an and are as at be by for from in is it of on or the this to with
    au aux ce ces d dans de des du en et l la le les par pour qu que sur un une
    al con del e el las lo los o para por se su sus un una y""".split()
)


def nfc(text: str) -> str:
    """The text in Unicode NFC, so a decomposed "protégé" is the same as a composed one."""
    return unicodedata.normalize("NFC", text)


def fold(word: str) -> str:
    """Lower-case ``word`` and strip its accents: "Protégé" -> "protege", "Œuvre" -> "oeuvre"."""
    decomposed = unicodedata.normalize("NFKD", word.casefold().translate(_LIGATURES))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stem(word: str) -> str:
    """Strip plurals and simple inflections of English, French and Spanish from a folded word."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("eaux"):
        word = word[:-1]
    elif word.endswith("aux") and len(word) > 4:
        word = word[:-3] + "al"
    elif word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "i"
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) >= 7:
        word = word[:-3]
    elif word.endswith("ed") and len(word) >= 6:
        word = word[:-2]
    for _ in range(2):
        if word.endswith("e") and len(word) > 4:
            word = word[:-1]
    if word.endswith("y") and len(word) > 4:
        word = word[:-1] + "i"
    elif word.endswith(("o", "a")) and len(word) > 4:
        word = word[:-1]
    return word


@lru_cache(maxsize=1 << 18)
def term(word: str, stemmed: bool = True) -> str | None:
    """The index term of one word (None for a stop word). Cached: a corpus repeats its words endlessly."""
    folded = fold(word)
    if folded in STOPWORDS:
        return None
    return stem(folded) if stemmed else folded


def terms(text: str, *, stemmed: bool = True) -> list[str]:
    """The index terms of ``text``, in order, without stop words."""
    found = (term(w, stemmed) for w in WORD.findall(nfc(text)))
    return [t for t in found if t is not None]


class _NfcTokenizer(RegexTokenizer):
    """Whoosh's word tokenizer on NFC text (a decomposed accent must not split a word)."""

    def __call__(self, value: str, **kwargs: object) -> Iterator[Token]:  # type: ignore[override]
        return super().__call__(nfc(value), **kwargs)


class _FoldFilter(Filter):
    """Fold case and accents, drop stop words, and (optionally) stem; part separators pass as they are."""

    def __init__(self, stemmed: bool) -> None:
        self.stemmed = stemmed

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        stemmed = self.stemmed
        for token in tokens:
            if token.text == PART:
                yield token
                continue
            analysed = term(token.text, stemmed)
            if analysed is not None:
                token.text = analysed
                yield token


class _PairFilter(Filter):
    """Turn a stream of terms into the pairs of neighbours ("rescu centr"), so phrases are single terms."""

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        previous: str | None = None
        for token in tokens:
            current = token.text
            if current == PART:
                previous = None
                continue
            if previous is not None:
                token.text = f"{previous} {current}"
                yield token
            previous = current


# The text the body analyzer read last in this thread, and its terms once it has read all of it.
_last = threading.local()


class _BodyTokenizer(_NfcTokenizer):
    """The body's tokenizer, which notes the text it is given (see ``_PairsOfBody``)."""

    def __call__(self, value: str, **kwargs: object) -> Iterator[Token]:  # type: ignore[override]
        _last.value, _last.terms = value, None
        return super().__call__(value, **kwargs)


class _NoteTerms(Filter):
    """Pass the body's terms through, and note them (part separators too) once the whole text is read."""

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        found = []
        for token in tokens:
            found.append(token.text)
            if token.text != PART:
                yield token
        _last.terms = found


class _PairsOfBody(Analyzer):
    """The phrase field's analyzer: pairs of consecutive terms.

    Each document gives the phrase field the very text of its body, analysed just before (Whoosh
    indexes fields in name order): the pairs are made from the body's terms instead of analysing
    the text a second time, which was a fifth of the cost of indexing. Any other text is analysed.
    """

    def __call__(self, value: str, **kwargs: Any) -> Iterator[Token]:  # type: ignore[override]
        if getattr(_last, "value", None) is not value or _last.terms is None:
            analyzer = _NfcTokenizer(_WORD_OR_PART) | _FoldFilter(stemmed=True) | _PairFilter()
            yield from analyzer(value, **kwargs)
            return
        token = Token(positions=False, chars=False, removestops=True, mode=kwargs.get("mode", ""))
        terms = _last.terms
        for previous, current in zip(terms, terms[1:], strict=False):
            if previous == PART or current == PART:
                continue
            token.text, token.boost, token.stopped = f"{previous} {current}", 1.0, False
            yield token


def text_analyzer():  # type: ignore[no-untyped-def]
    """The analyzer of the searchable text fields."""
    return _BodyTokenizer(_WORD_OR_PART) | _FoldFilter(stemmed=True) | _NoteTerms()


def pair_analyzer():  # type: ignore[no-untyped-def]
    """The analyzer of the phrase field: pairs of consecutive terms."""
    return _PairsOfBody()


def word_analyzer():  # type: ignore[no-untyped-def]
    """The analyzer of the spelling field: folded words, not stemmed (suggestions must be real words)."""
    return _NfcTokenizer(r"\w+") | _FoldFilter(stemmed=False)


def pairs(text: str) -> list[str]:
    """The phrase terms of ``text``: pairs of consecutive stemmed terms of each of its parts."""
    found = []
    for part in text.split(PART):
        words = terms(part)
        found += [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return found
