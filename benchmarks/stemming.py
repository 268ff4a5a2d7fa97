"""Stemming benchmark: the project's light multilingual stemmer against per-language Snowball stemmers.

Run from the project folder::

    .venv/bin/python benchmarks/stemming.py --records 1000
    .venv/bin/python benchmarks/stemming.py --records 10000

It loads the deterministic EN/FR/ES corpus of ``benchmarks/corpus.py`` into a throw-away registry
(as ``benchmarks/search.py`` does, so the same seed and size give the same records), takes each
public record's ``document_for(record, "public")`` body split into its languages (the record's own
text in the record's language, each translation in its own), and indexes those documents with
Whoosh under four analysis schemes, each in its own temporary folder:

* ``light``: the project's analyzer (``registry.search.analysis.text_analyzer()``), one field;
* ``snowball-fields``: one field per language, each folded then stemmed by that language's
  Snowball stemmer; a query word is an OR over the three fields;
* ``snowball-one-field``: one field, each text stemmed by its own language's Snowball stemmer at
  index time; a query word is an OR of the distinct terms the three stemmers give;
* ``none``: folded, not stemmed (the floor).

For each scheme: build time, index size, latency of the benchmark's one- and two-word queries
(top 20 plus the count of all matches) and terms looked up per query; then match quality on
labelled inflection groups (words that should find each other) and over-stemming pairs (words
that should not), worked out with each scheme's analyzers and checked against its index.
Human-readable lines come first; the last line is one JSON object (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script (``python benchmarks/stemming.py``): make the project importable.
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from whoosh import index as whoosh_index  # noqa: E402
from whoosh.analysis import Filter, RegexTokenizer, Token  # noqa: E402
from whoosh.fields import ID, TEXT, Schema  # noqa: E402
from whoosh.lang import stemmer_for_language  # noqa: E402
from whoosh.query import And, NullQuery, Or, Query, Term  # noqa: E402

from benchmarks.search import (  # noqa: E402
    QUERIES,
    SEED,
    folder_mb,
    load_corpus,
    make_registry,
    percentile,
    records_in_batches,
    say,
)
from registry import db  # noqa: E402
from registry.models import Record  # noqa: E402
from registry.search.analysis import (  # noqa: E402
    STOPWORDS,
    WORD,
    fold,
    nfc,
    term,
    text_analyzer,
    word_analyzer,
)
from registry.search.documents import document_for  # noqa: E402

LANGUAGES = ("en", "fr", "es")
LIMITMB = 256
# A scheme failing more groups than this (the floor) gets a count instead of a list.
MAX_LISTED = 20
# The timed queries: the one- and two-word queries of the search benchmark.
TIMED_KINDS = ("word", "two_words")
SNOWBALL = {language: stemmer_for_language(language) for language in LANGUAGES}


# What users expect --------------------------------------------------------------------------------

# (language, members): typed as a query, every member should find the documents of that language
# holding any other member. Every group has at least one member in the synthetic corpus; forms the
# corpus never writes but users type (the benchmark queries "smuggling", "saisies", "decomiso"…)
# are listed too, and the run prints which members the corpus lacks.
INFLECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("en", ("tortoise", "tortoises")),
    ("en", ("parrot", "parrots")),
    ("en", ("chimpanzee", "chimpanzees")),
    ("en", ("rescue centre", "rescue centres")),
    ("en", ("veterinarian", "veterinarians")),
    ("en", ("transfer", "transferred")),
    ("en", ("return", "returned")),
    ("en", ("screened", "screening")),
    ("en", ("handle", "handling")),
    ("en", ("loris", "lorises")),
    ("en", ("smuggled", "smuggling")),
    ("en", ("quarantine", "quarantined")),
    ("fr", ("tortue", "tortues")),
    ("fr", ("perroquet", "perroquets")),
    ("fr", ("saisie", "saisies", "saisi", "saisis")),
    ("fr", ("protégé", "protege", "protégée", "protegee", "protégés", "protégées")),
    ("fr", ("vétérinaire", "vétérinaires", "veterinaire")),
    ("fr", ("confisqué", "confisqués", "confisquée", "confisquee", "confisques")),
    ("fr", ("chimpanzé", "chimpanzés", "chimpanze")),
    ("fr", ("caméléon", "caméléons")),
    ("fr", ("centre de sauvetage", "centres de sauvetage")),
    ("fr", ("vivant", "vivants", "vivantes")),
    ("fr", ("animal", "animaux")),
    ("fr", ("oiseau", "oiseaux")),
    ("es", ("tortuga", "tortugas")),
    ("es", ("loro", "loros")),
    ("es", ("decomiso", "decomisos", "décomiso")),
    ("es", ("decomisado", "decomisados")),
    ("es", ("pangolín", "pangolines", "pangolin")),
    ("es", ("chimpancé", "chimpancés", "chimpance")),
    ("es", ("camaleón", "camaleones")),
    ("es", ("veterinario", "veterinarios", "veterinaria")),
    ("es", ("confiscado", "confiscados", "confiscada")),
    ("es", ("centro de rescate", "centros de rescate")),
    ("es", ("protegido", "protegidas")),
    ("es", ("vivos", "vivas")),
)

# Derived words a searcher may hope to reach but no light stemmer should promise: reported apart.
DERIVATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("en", ("confiscated", "confiscation")),
    ("en", ("repatriated", "repatriation")),
    ("en", ("seized", "seizure")),
    ("fr", ("confisqués", "confiscation")),
    ("fr", ("rapatriés", "rapatriement")),
    ("es", ("decomiso", "decomisado", "decomisaron")),
    ("es", ("confiscados", "confiscación")),
)

# (language, word, language, word): neither should find the documents holding the other. Chosen
# where a stemmer is tempted: Snowball English's "-al"/"-ation"/"-ity" endings, French Snowball's
# "-ie", Spanish Snowball's final vowel, the light stemmer's final "-e"/"-ing"/"-o"/"-a", and two
# cross-language collisions (the Spanish stemmer makes "lor" of "loro" and the French one of
# "loris"; Spanish "casa" becomes "cas"). Many of these words are not in the corpus and count from
# the analysis alone (the run lists them); the others are also checked on the index.
MUST_NOT: tuple[tuple[str, str, str, str], ...] = (
    ("en", "animal", "en", "animation"),
    ("en", "international", "en", "internal"),
    ("en", "organ", "en", "organization"),
    ("en", "university", "en", "universe"),
    ("en", "parrot", "en", "part"),
    ("en", "centre", "en", "central"),
    ("en", "police", "en", "policy"),
    ("en", "evening", "en", "even"),
    ("en", "new", "en", "news"),
    ("fr", "saisie", "fr", "saison"),
    ("fr", "sort", "fr", "sortie"),
    ("fr", "port", "fr", "porte"),
    ("fr", "gestion", "fr", "geste"),
    ("fr", "formation", "fr", "forme"),
    ("fr", "orangs", "fr", "orange"),
    ("es", "plazo", "es", "plaza"),
    ("es", "caso", "es", "casa"),
    ("es", "puerto", "es", "puerta"),
    ("es", "meses", "es", "mesa"),
    ("fr", "cas", "es", "casa"),
    ("es", "loro", "fr", "loris"),
)


# Analysis -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def snowball_term(word: str, language: str) -> str | None:
    """The folded, then Snowball-stemmed term of ``word`` in ``language`` (None for a stop word). Cached."""
    folded = fold(word)
    if folded in STOPWORDS:
        return None
    return SNOWBALL[language](folded)


@lru_cache(maxsize=1 << 18)
def stem_then_fold_term(word: str, language: str) -> str | None:
    """The other order: Snowball on the accented lower-case word, folded afterwards (analysis only)."""
    if fold(word) in STOPWORDS:
        return None
    return fold(SNOWBALL[language](nfc(word).casefold()))


class _NfcTokenizer(RegexTokenizer):
    """Whoosh's word tokenizer on NFC text, as the project's analyzers use."""

    def __call__(self, value: str, **kwargs: Any) -> Iterator[Token]:  # type: ignore[override]
        return super().__call__(nfc(value), **kwargs)


class _TermFilter(Filter):
    """Replace each token by ``function(token, language)``, dropping the tokens it maps to None."""

    def __init__(self, function: Callable[[str, str], str | None], language: str) -> None:
        self.function = function
        self.language = language

    def __call__(self, tokens: Iterator[Token]) -> Iterator[Token]:
        function, language = self.function, self.language
        for token in tokens:
            analysed = function(token.text, language)
            if analysed is not None:
                token.text = analysed
                yield token


def snowball_analyzer(language: str, function: Callable[[str, str], str | None] = snowball_term) -> Any:
    """NFC words, folded (case, accents), the project's stop words out, then ``language``'s Snowball stem."""
    return _NfcTokenizer(r"\w+") | _TermFilter(function, language)


def analyse(analyzer: Any, text: str) -> list[str]:
    """The terms ``analyzer`` makes of ``text``."""
    return [token.text for token in analyzer(text)]


def clear_caches() -> None:
    """Empty the term caches, so that every build starts cold."""
    for function in (term, snowball_term, stem_then_fold_term):
        cache_clear = getattr(function, "cache_clear", None)
        if cache_clear is not None:
            cache_clear()


# The schemes --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Scheme:
    """One way of analysing the three languages: the analyzer and the field of each language.

    ``prestem``: the field holds terms already made by the language's analyzer (one field, several
    stemmers: Whoosh gives a field one analyzer, so the document is analysed before it is added).
    """

    name: str
    summary: str
    analyzers: dict[str, Any]
    fields: dict[str, str]
    prestem: bool = False
    indexed: bool = True
    _index_terms: dict[tuple[str, str], frozenset[tuple[str, str]]] = field(default_factory=dict, repr=False)
    _query_terms: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict, repr=False)

    def schema(self) -> Schema:
        """The Whoosh schema: a stored id and one text field per distinct field name, no positions."""
        columns: dict[str, Any] = {"id": ID(stored=True)}
        for language in LANGUAGES:
            name = self.fields[language]
            analyzer = RegexTokenizer(r"\S+") if self.prestem else self.analyzers[language]
            columns.setdefault(name, TEXT(analyzer=analyzer, phrase=False))
        return Schema(**columns)

    def document(self, doc: Document) -> dict[str, str]:
        """The fields of ``doc``: each language's text (or terms) in its language's field."""
        parts: dict[str, list[str]] = {}
        for language, text in doc.segments:
            value = " ".join(analyse(self.analyzers[language], text)) if self.prestem else text
            parts.setdefault(self.fields[language], []).append(value)
        return {"id": doc.id, **{name: "\n".join(values) for name, values in parts.items()}}

    def index_terms(self, word: str, language: str) -> frozenset[tuple[str, str]]:
        """The (field, term) pairs a document of ``language`` holds for ``word`` (memoised)."""
        key = (word, language)
        if key not in self._index_terms:
            name = self.fields[language]
            self._index_terms[key] = frozenset((name, t) for t in analyse(self.analyzers[language], word))
        return self._index_terms[key]

    def query_terms(self, word: str) -> frozenset[tuple[str, str]]:
        """The (field, term) pairs a query for ``word`` looks up: what every language makes of it."""
        if word not in self._query_terms:
            terms_ = (self.index_terms(word, language) for language in LANGUAGES)
            self._query_terms[word] = frozenset().union(*terms_)
        return self._query_terms[word]

    def query(self, text: str) -> tuple[Query, int]:
        """The query for ``text`` (every word must match) and the number of terms it looks up."""
        clauses: list[Query] = []
        looked_up = 0
        for word in WORD.findall(nfc(text)):
            leaves = [Term(name, t) for name, t in sorted(self.query_terms(word))]
            if not leaves:
                continue
            looked_up += len(leaves)
            clauses.append(leaves[0] if len(leaves) == 1 else Or(leaves))
        if not clauses:
            return NullQuery, 0
        return (clauses[0] if len(clauses) == 1 else And(clauses)), looked_up


def make_schemes() -> list[Scheme]:
    """The three candidates and the floor, plus the analysis-only variant of the Snowball order."""
    one_field = dict.fromkeys(LANGUAGES, "body")
    light = text_analyzer()
    plain = word_analyzer()
    return [
        Scheme("light", "project analyzer, one field", dict.fromkeys(LANGUAGES, light), one_field),
        Scheme(
            "snowball-fields",
            "fold + Snowball, one field per language",
            {language: snowball_analyzer(language) for language in LANGUAGES},
            {language: f"body_{language}" for language in LANGUAGES},
        ),
        Scheme(
            "snowball-one-field",
            "fold + Snowball of the text's language, one field",
            {language: snowball_analyzer(language) for language in LANGUAGES},
            one_field,
            prestem=True,
        ),
        Scheme("none", "folded, no stemming (floor)", dict.fromkeys(LANGUAGES, plain), one_field),
        Scheme(
            "snowball-stem-then-fold",
            "Snowball on accented words, then fold (words only, not indexed)",
            {language: snowball_analyzer(language, stem_then_fold_term) for language in LANGUAGES},
            one_field,
            prestem=True,
            indexed=False,
        ),
    ]


# The corpus ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def _folded(word: str) -> str:
    return fold(word)


def folded_words(text: str) -> str:
    """``text`` as its folded words separated by single spaces, with a space at each end."""
    return " " + " ".join(_folded(w) for w in WORD.findall(nfc(text))) + " "


def folded_phrase(phrase: str) -> str:
    """The folded words of ``phrase``, separated by single spaces."""
    return " ".join(_folded(w) for w in WORD.findall(nfc(phrase)))


@dataclass
class Document:
    """One public document: its text split into (language, text) segments, the words folded per language."""

    id: str
    language: str
    segments: list[tuple[str, str]]
    words: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for language in LANGUAGES:
            texts = [text for lang, text in self.segments if lang == language]
            self.words[language] = folded_words("\n".join(texts)) if texts else " "

    def holds(self, phrase: str, language: str | None = None) -> bool:
        """Whether the folded ``phrase`` occurs in the text of ``language`` (of any language if None)."""
        needle = f" {phrase} "
        if language is not None:
            return needle in self.words[language]
        return any(needle in self.words[lang] for lang in LANGUAGES)

    @property
    def chars(self) -> int:
        """The length of the document's text."""
        return sum(len(text) for _, text in self.segments)


def split_by_language(record: Record, body: str) -> list[tuple[str, str]]:
    """The ``body`` of ``record`` as (language, text): each translation the body holds apart, the rest
    in the record's language. Labels that ``document_for`` writes in all three languages (types,
    regions, Party and taxon names) stay with the record's language."""
    own = body
    segments: list[tuple[str, str]] = []
    for translation in record.translations:
        pieces = [p for p in (translation.summary, translation.title, translation.title) if p]
        rest = own
        for piece in pieces:
            if piece not in rest:
                break
            rest = rest.replace(piece, "", 1)
        else:
            own = rest
            segments.append((translation.language, "\n".join(pieces)))
    if record.language not in LANGUAGES:
        raise ValueError(f"{record.id}: language {record.language!r} is not one of {LANGUAGES}")
    return [(record.language, own), *segments]


def public_documents(app: Flask) -> list[Document]:
    """Every public record of the registry as a Document, in id order."""
    documents: list[Document] = []
    with app.app_context():
        for records in records_in_batches():
            for record in records:
                derived = document_for(record, "public")
                if derived is not None:
                    segments = split_by_language(record, derived["body"])
                    documents.append(Document(str(len(documents)), record.language, segments))
        db.get_engine().dispose()
    return documents


# Building and timing ------------------------------------------------------------------------------


def build(scheme: Scheme, documents: list[Document], folder: Path) -> float:
    """Index ``documents`` under ``scheme`` in ``folder`` (one writer, non-compound segments); seconds."""
    clear_caches()
    gc.collect()
    started = time.perf_counter()
    ix = whoosh_index.create_in(str(folder), scheme.schema())
    writer = ix.writer(limitmb=LIMITMB, compound=False)
    for doc in documents:
        writer.add_document(**scheme.document(doc))
    writer.commit()
    return time.perf_counter() - started


def unique_terms(searcher: Any, scheme: Scheme) -> int:
    """How many distinct terms the scheme's text fields hold."""
    reader = searcher.reader()
    return sum(sum(1 for _ in reader.lexicon(name)) for name in sorted(set(scheme.fields.values())))


def timed_queries() -> list[str]:
    """The one- and two-word queries of ``benchmarks/search.py``."""
    return [text for kind, text in QUERIES if kind in TIMED_KINDS]


def search_once(searcher: Any, scheme: Scheme, text: str) -> int:
    """What a search page asks of the index: the top 20, then the count of every match."""
    query, _ = scheme.query(text)
    results = searcher.search(query, limit=20)
    return len(results)


def time_searches(
    searchers: dict[str, Any], schemes: list[Scheme], texts: list[str], searches: int, rng: random.Random
) -> dict[str, list[float]]:
    """Per scheme, ``searches`` or more timings (ms) of ``search_once``: the query mix in shuffled rounds.

    Each query runs in every scheme in turn, starting with a different scheme each time, so that the
    machine's drift is shared out evenly. The collector is frozen first: a full garbage collection
    would otherwise land in one scheme's sample by chance.
    """
    sequence: list[str] = []
    while len(sequence) < searches:
        batch = list(texts)
        rng.shuffle(batch)
        sequence.extend(batch)
    timings: dict[str, list[float]] = {scheme.name: [] for scheme in schemes}
    gc.collect()
    gc.freeze()
    try:
        for position, text in enumerate(sequence):
            shift = position % len(schemes)
            for scheme in schemes[shift:] + schemes[:shift]:
                searcher = searchers[scheme.name]
                started = time.perf_counter()
                search_once(searcher, scheme, text)
                timings[scheme.name].append((time.perf_counter() - started) * 1000)
    finally:
        gc.unfreeze()
    return timings


# Match quality ------------------------------------------------------------------------------------


def phrase_words(member: str) -> list[str]:
    """The words of ``member`` that are not stop words."""
    return [w for w in WORD.findall(nfc(member)) if fold(w) not in STOPWORDS]


def finds(scheme: Scheme, query: str, target: str, language: str) -> bool:
    """Whether a query for ``query`` finds a document of ``language`` holding ``target`` (word by word)."""
    asked, held = phrase_words(query), phrase_words(target)
    if len(asked) != len(held):
        raise ValueError(f"{query!r} and {target!r} do not have the same number of words")
    return all(
        scheme.query_terms(a) & scheme.index_terms(h, language) for a, h in zip(asked, held, strict=True)
    )


def conflated(scheme: Scheme, language: str, members: tuple[str, ...]) -> bool:
    """Whether every member of the group finds the documents of ``language`` holding every other member."""
    return all(finds(scheme, q, d, language) for q in members for d in members if q != d)


def describe(scheme: Scheme, language: str, members: tuple[str, ...]) -> str:
    """The members of a group with the terms a document of ``language`` gets for them."""
    shown = []
    for member in members:
        terms_ = [sorted(t for _, t in scheme.index_terms(w, language)) for w in phrase_words(member)]
        shown.append(f"{member}→{' '.join('/'.join(t) or '∅' for t in terms_)}")
    return ", ".join(shown)


@dataclass
class Quality:
    """The match quality of one scheme, from its analyzers."""

    groups_conflated: int
    groups: int
    derivations_conflated: int
    derivations: int
    false_conflations: int
    must_not: int
    failed_groups: list[str]
    failed_derivations: list[str]
    false_pairs: list[str]


def label(language: str, members: tuple[str, ...]) -> str:
    """A group's name in the report, e.g. ``fr: tortue/tortues``."""
    return f"{language}: {'/'.join(members)}"


def quality(scheme: Scheme) -> Quality:
    """Count the groups the scheme conflates and the must-not pairs it wrongly conflates."""
    failed = [label(lang, m) for lang, m in INFLECTIONS if not conflated(scheme, lang, m)]
    failed_derived = [label(lang, m) for lang, m in DERIVATIONS if not conflated(scheme, lang, m)]
    false_pairs = [
        f"{la}:{a} ~ {lb}:{b}"
        for la, a, lb, b in MUST_NOT
        if finds(scheme, a, b, lb) or finds(scheme, b, a, la)
    ]
    return Quality(
        groups_conflated=len(INFLECTIONS) - len(failed),
        groups=len(INFLECTIONS),
        derivations_conflated=len(DERIVATIONS) - len(failed_derived),
        derivations=len(DERIVATIONS),
        false_conflations=len(false_pairs),
        must_not=len(MUST_NOT),
        failed_groups=failed,
        failed_derivations=failed_derived,
        false_pairs=false_pairs,
    )


def checked_pairs() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """Every (query, target, target's language, words the target's documents must lack) behind the figures.

    The documents checked for a target of a group are those holding no other member of the group
    (the query might reach them through that member instead); for a must-not pair, those not
    holding the query word itself.
    """
    pairs = []
    for language, members in (*INFLECTIONS, *DERIVATIONS):
        for d in members:
            others = tuple(m for m in members if m != d)
            pairs += [(q, d, language, others) for q in others]
    for la, a, lb, b in MUST_NOT:
        pairs += [(a, b, lb, (a,)), (b, a, la, (b,))]
    return pairs


@dataclass
class IndexCheck:
    """How often the index agrees with the analysis: checked pairs, agreements, and the disagreements."""

    checked: int = 0
    agree: int = 0
    disagreements: list[str] = field(default_factory=list)


class Holders:
    """Which documents hold a phrase, in one language's text or in any (memoised: schemes share it)."""

    def __init__(self, documents: list[Document]) -> None:
        self.documents = documents
        self._memo: dict[tuple[str, str | None], frozenset[int]] = {}

    def __call__(self, phrase: str, language: str | None = None) -> frozenset[int]:
        """The numbers of the documents holding ``phrase`` (folded) in ``language`` (any if None)."""
        key = (folded_phrase(phrase), language)
        if key not in self._memo:
            held = key[0]
            self._memo[key] = frozenset(
                i for i, doc in enumerate(self.documents) if doc.holds(held, language)
            )
        return self._memo[key]


def check_targets(holders: Holders) -> list[tuple[str, str, str, frozenset[int]]]:
    """The pairs of ``checked_pairs`` the corpus can test, each with the documents to look for.

    For a query word q and a target d of language L: the documents whose L text holds d but none
    of the words listed with the pair. Pairs with no such document cannot be tested and are left out.
    """
    targets = []
    for query_text, target, language, lacking in checked_pairs():
        if folded_phrase(target) in {folded_phrase(word) for word in lacking}:
            continue
        only = holders(target, language).difference(*(holders(word) for word in lacking))
        if only:
            targets.append((query_text, target, language, only))
    return targets


def check_on_index(
    scheme: Scheme, searcher: Any, targets: list[tuple[str, str, str, frozenset[int]]]
) -> IndexCheck:
    """Confirm ``finds`` on the index: for each target, the analysis says whether the query finds its
    documents; the index must then return all of them (found) or not all of them (not found)."""
    number = {n: int(fields["id"]) for n, fields in searcher.reader().iter_docs()}
    found_by: dict[str, set[int]] = {}
    result = IndexCheck()
    for query_text, target, language, only in targets:
        if query_text not in found_by:
            query, _ = scheme.query(query_text)
            found_by[query_text] = {number[n] for n in searcher.docs_for_query(query)}
        predicted = finds(scheme, query_text, target, language)
        observed = only <= found_by[query_text]
        result.checked += 1
        if predicted == observed:
            result.agree += 1
        else:
            result.disagreements.append(f"{query_text} -> {language}:{target} predicted {predicted}")
    return result


def missing_members(holders: Holders) -> dict[str, list[str]]:
    """The group members, and the must-not words, that no document of their language holds."""
    groups = [(lang, m) for lang, members in (*INFLECTIONS, *DERIVATIONS) for m in members]
    must_not = [(la, a) for la, a, _, _ in MUST_NOT] + [(lb, b) for _, _, lb, b in MUST_NOT]
    return {
        name: [
            f"{language}:{word}" for language, word in dict.fromkeys(wanted) if not holders(word, language)
        ]
        for name, wanted in (("groups", groups), ("must_not", must_not))
    }


# The run ------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="how many records to generate")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the corpus and the query order")
    parser.add_argument("--searches", type=int, default=300, help="timed searches per scheme (at least 200)")
    args = parser.parse_args(argv)
    if args.searches < 200:
        parser.error("--searches must be at least 200")
    return args


def build_indexes(
    schemes: list[Scheme], documents: list[Document], home: Path, texts: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Build each scheme's index under ``home``; its figures so far, and a searcher of each index."""
    figures: dict[str, dict[str, Any]] = {}
    searchers: dict[str, Any] = {}
    for scheme in schemes:
        folder = home / f"index-{scheme.name}"
        folder.mkdir()
        build_s = build(scheme, documents, folder)
        searcher = whoosh_index.open_dir(str(folder)).searcher()
        searchers[scheme.name] = searcher
        figures[scheme.name] = {
            "build_s": round(build_s, 2),
            "index_mb": round(folder_mb(folder), 2),
            "unique_terms": unique_terms(searcher, scheme),
            "terms_per_query": round(sum(scheme.query(t)[1] for t in texts) / len(texts), 2),
        }
        say(
            f"built {scheme.name:19} in {build_s:6.2f} s: {figures[scheme.name]['index_mb']:6.2f} MB,"
            f" {figures[scheme.name]['unique_terms']} terms"
        )
    return figures, searchers


def warm_up(searchers: dict[str, Any], schemes: list[Scheme], texts: list[str]) -> dict[str, float]:
    """Run every query once in every scheme, printing the match counts; the mean count per scheme."""
    say(f"warm-up: matches per query ({' / '.join(s.name for s in schemes)})")
    totals = dict.fromkeys((s.name for s in schemes), 0)
    for text in texts:
        counts = [search_once(searchers[s.name], s, text) for s in schemes]
        for scheme, count in zip(schemes, counts, strict=True):
            totals[scheme.name] += count
        say(f"  {text:26} " + " ".join(f"{c:6d}" for c in counts))
    return {name: round(total / len(texts), 1) for name, total in totals.items()}


def quality_figures(scheme: Scheme) -> dict[str, Any]:
    """The match-quality figures of ``scheme`` for the JSON line."""
    measured = quality(scheme)
    return {
        "groups_conflated": measured.groups_conflated,
        "groups": measured.groups,
        "derivations_conflated": measured.derivations_conflated,
        "derivations": measured.derivations,
        "false_conflations": measured.false_conflations,
        "must_not": measured.must_not,
        "failed_groups": measured.failed_groups,
        "failed_derivations": measured.failed_derivations,
        "false_pairs": measured.false_pairs,
    }


def report(schemes: list[Scheme], figures: dict[str, dict[str, Any]], checks: dict[str, IndexCheck]) -> None:
    """Print the comparison table, then each scheme's failed groups, false conflations and index check."""
    say(
        f"{'scheme':24} {'build_s':>7} {'MB':>6} {'terms':>6} {'p50_ms':>7} {'p95_ms':>7} {'t/query':>7}"
        f" {'matches':>7} {'groups':>6} {'deriv':>5} {'false':>5}"
    )
    for scheme in schemes:
        f = figures[scheme.name]
        if scheme.indexed:
            timing = (
                f"{f['build_s']:7.2f} {f['index_mb']:6.2f} {f['unique_terms']:6d} {f['p50_ms']:7.2f}"
                f" {f['p95_ms']:7.2f} {f['terms_per_query']:7.2f} {f['mean_matches']:7.1f}"
            )
        else:
            timing = f"{'(words only, not indexed)':>55}"
        groups = f"{f['groups_conflated']}/{f['groups']}"
        derived = f"{f['derivations_conflated']}/{f['derivations']}"
        wrong = f"{f['false_conflations']}/{f['must_not']}"
        say(f"{scheme.name:24} {timing} {groups:>6} {derived:>5} {wrong:>5}")
    for scheme in schemes:
        say(f"{scheme.name} ({scheme.summary}):")
        failed = set(figures[scheme.name]["failed_groups"]) | set(figures[scheme.name]["failed_derivations"])
        if len(failed) > MAX_LISTED:
            say(f"  fails {len(failed)} groups and derivations (listed in the JSON line)")
            failed = set()
        for language, members in INFLECTIONS:
            if label(language, members) in failed:
                say(f"  fails       {describe(scheme, language, members)}")
        for language, members in DERIVATIONS:
            if label(language, members) in failed:
                say(f"  (derived)   {describe(scheme, language, members)}")
        for pair in figures[scheme.name]["false_pairs"]:
            say(f"  conflates   {pair}")
        if scheme.name in checks:
            check = checks[scheme.name]
            say(f"  index agrees with the analysis on {check.agree} of {check.checked} checked pairs")
            for line in check.disagreements:
                say(f"  index disagrees: {line}")


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """The whole benchmark in ``home``; returns the figures of the final JSON line."""
    started = time.perf_counter()
    rng = random.Random(args.seed)
    app = make_registry(home)
    loaded = load_corpus(app, args.records, rng)
    documents = public_documents(app)
    by_language = {lang: sum(d.language == lang for d in documents) for lang in LANGUAGES}
    translated = sum(len(d.segments) > 1 for d in documents)
    chars = sum(d.chars for d in documents)
    say(
        f"corpus: {loaded.records} records, {len(documents)} public documents {by_language},"
        f" {translated} with a translation segment, {chars / 1e6:.1f} MB of text"
    )
    holders = Holders(documents)
    missing = missing_members(holders)
    say(f"group members the corpus lacks (query-only forms): {', '.join(missing['groups']) or 'none'}")
    say(f"must-not words the corpus lacks (analysis only): {', '.join(missing['must_not']) or 'none'}")

    schemes = make_schemes()
    indexed = [s for s in schemes if s.indexed]
    texts = timed_queries()
    figures, searchers = build_indexes(indexed, documents, home, texts)
    matches = warm_up(searchers, indexed, texts)
    timings = time_searches(searchers, indexed, texts, args.searches, rng)
    searches = len(timings[indexed[0].name])
    say(f"{searches} timed searches per scheme over {len(texts)} one- and two-word queries")
    targets = check_targets(holders)
    checks: dict[str, IndexCheck] = {}
    for scheme in schemes:
        figures.setdefault(scheme.name, {}).update(quality_figures(scheme))
        if scheme.indexed:
            values = timings[scheme.name]
            figures[scheme.name]["p50_ms"] = round(percentile(values, 50), 2)
            figures[scheme.name]["p95_ms"] = round(percentile(values, 95), 2)
            figures[scheme.name]["mean_matches"] = matches[scheme.name]
            checks[scheme.name] = check = check_on_index(scheme, searchers[scheme.name], targets)
            figures[scheme.name]["index_check"] = f"{check.agree}/{check.checked}"
    report(schemes, figures, checks)
    for searcher in searchers.values():
        searcher.close()
    return {
        "records": loaded.records,
        "public_documents": len(documents),
        "seed": args.seed,
        "searches": searches,
        "queries": len(texts),
        "missing_words": missing,
        "schemes": figures,
        "total_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark in a temporary folder and print the figures, the JSON object last."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="registry-stemming-") as folder:
        figures = run(args, Path(folder))
    print(json.dumps(figures, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
