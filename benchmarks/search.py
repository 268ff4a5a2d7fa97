"""Search benchmark: build the indexes of a synthetic registry, time public searches against SQLite FTS5.

Run from the project folder::

    .venv/bin/python benchmarks/search.py --records 1000
    .venv/bin/python benchmarks/search.py --records 10000 --writer --profile

It creates a throw-away registry in a temporary folder, loads a deterministic EN/FR/ES corpus
(``benchmarks/corpus.py``) straight into the database, rebuilds the three tier indexes, then times
complete ``GET /search`` requests through the Flask test client (query parsing, facets, ranking,
snippets, the rendered page), the same queries on an SQLite FTS5 table of the same public text, and
how long an update takes to become searchable. Human-readable lines come first; the last line is
one JSON object with every figure (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import pstats
import random
import re
import resource
import sqlite3
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script (``python benchmarks/search.py``): make the project importable.
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402
from sqlalchemy.orm import selectinload, undefer  # noqa: E402

import registry  # noqa: E402
import seed  # noqa: E402
from benchmarks.corpus import make_names, make_records  # noqa: E402
from registry import db, migrate, search  # noqa: E402
from registry.db import session  # noqa: E402
from registry.models import File, IndexJob, Party, Record, Taxon, network_members  # noqa: E402
from registry.search.documents import document_for  # noqa: E402
from registry.services.imports import load_reference  # noqa: E402

SEED = 2021_008
PARTIES = 40
NAMES = 3000
CHUNK = 500
UPDATES = 20
POLL_S = 0.005
WRITER_INTERVAL_S = 0.5

# The query mix: (kind, what the user types). Accented and unaccented spellings of the same words.
QUERIES: tuple[tuple[str, str], ...] = (
    ("word", "tortue"),
    ("word", "tortugas"),
    ("word", "tortoises"),
    ("word", "protégé"),
    ("word", "protege"),
    ("word", "décomiso"),
    ("word", "decomiso"),
    ("word", "saisie"),
    ("word", "quarantine"),
    ("word", "pangolines"),
    ("word", "perroquets"),
    ("word", "loros"),
    ("word", "chimpancé"),
    ("word", "euthanasia"),
    ("word", "rapatriement"),
    ("word", "vétérinaires"),
    ("word", "veterinaria"),
    ("word", "contrebande"),
    ("word", "smuggling"),
    ("word", "cuarentena"),
    ("two_words", "parrot quarantine"),
    ("two_words", "tortue saisie"),
    ("two_words", "pangolin seizure"),
    ("two_words", "loros decomiso"),
    ("two_words", "primates rescue"),
    ("two_words", "chimpanzé rapatriement"),
    ("two_words", "iguanas cuarentena"),
    ("two_words", "tortoise transport"),
    ("two_words", "psittacose perroquets"),
    ("two_words", "custodia temporal"),
    ("phrase", '"rescue centre"'),
    ("phrase", '"centre de sauvetage"'),
    ("phrase", '"centro de rescate"'),
    ("phrase", '"illegal trade"'),
    ("phrase", '"soins vétérinaires"'),
    ("phrase", '"cadena de custodia"'),
    ("phrase", '"temporary holding"'),
    ("phrase", '"espèces protégées"'),
    ("phrase", '"return to the wild"'),
    ("phrase", '"commerce illegal"'),
    ("prefix", "quarant*"),
    ("prefix", "protec*"),
    ("prefix", "sauvet*"),
    ("prefix", "confisc*"),
    ("prefix", "tortu*"),
    ("prefix", "perroq*"),
    ("prefix", "vétér*"),
    ("prefix", "decomis*"),
    ("prefix", "pango*"),
    ("prefix", "rehab*"),
)
KINDS = ("word", "two_words", "phrase", "prefix")


# Figures -------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def accented(text: str) -> bool:
    """Whether ``text`` carries a diacritic."""
    return any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", text))


@dataclass
class Timings:
    """Latencies in milliseconds of one engine, with the kind and text of each query."""

    samples: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, kind: str, text: str, seconds: float) -> None:
        """Record one timed query."""
        self.samples.append((kind, text, seconds * 1000))

    def values(self, group: str | None = None) -> list[float]:
        """The latencies of a kind, of "accented" or "plain" queries, or of all (``None``)."""
        if group is None:
            return [ms for _, _, ms in self.samples]
        if group in ("accented", "plain"):
            return [ms for _, text, ms in self.samples if accented(text) == (group == "accented")]
        return [ms for kind, _, ms in self.samples if kind == group]

    def slowest(self, count: int = 5) -> list[tuple[str, str, float]]:
        """The ``count`` slowest samples, slowest first."""
        return sorted(self.samples, key=lambda sample: sample[2], reverse=True)[:count]

    def summary(self, prefix: str = "") -> dict[str, float]:
        """p50 and p95 overall, then per kind and for accented vs plain queries."""
        everything = self.values()
        figures = {
            f"{prefix}p50_ms": percentile(everything, 50),
            f"{prefix}p95_ms": percentile(everything, 95),
        }
        for group in (*KINDS, "accented", "plain"):
            figures[f"{prefix}p50_ms_{group}"] = percentile(self.values(group), 50)
            figures[f"{prefix}p95_ms_{group}"] = percentile(self.values(group), 95)
        return {k: round(v, 2) for k, v in figures.items()}


def folder_mb(path: Path) -> float:
    """The size of the files under ``path`` in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def peak_rss_mb() -> float:
    """The peak resident memory of this process in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say(line: str) -> None:
    """Print a human-readable progress line at once."""
    print(line, flush=True)


# The registry -----------------------------------------------------------------------------------


def open_registry(home: Path) -> Flask:
    """The application of the registry in ``home`` (one per process, like one gunicorn worker)."""
    return registry.create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{home}/registry.sqlite",
            "REGISTRY_HOME": str(home),
            "SECRET_KEY": "bench",
            # The benchmark measures searching: it makes far more searches a minute than one visitor may.
            "RATE_LIMIT_SEARCH": "1000000/minute",
            "RATE_LIMIT_BROWSE": "1000000/minute",
            # As served: the commit wakes the worker's applier thread, which applies the index jobs.
            "INDEX_APPLY": "applier",
            # Every request searches: the same queries again would otherwise be kept pages (issue 11).
            "PAGE_CACHE_MB": 0,
        }
    )


def make_registry(home: Path) -> Flask:
    """A fresh registry in ``home``: migrated, with the Parties and the taxon checklist."""
    app = open_registry(home)
    with app.app_context():
        migrate.upgrade()
        load_reference(seed.read_json("parties.json"), seed.read_json("taxa.json"))
        db.commit()
    return app


@dataclass
class Loaded:
    """What the bulk load wrote."""

    records: int
    by_tier: dict[str, int]
    files: int
    public_ids: list[str]


def load_corpus(app: Flask, count: int, rng: random.Random) -> Loaded:
    """Insert ``count`` generated records in chunks (no index jobs: the indexes are rebuilt afterwards)."""
    with app.app_context():
        parties = rng.sample(list(session.scalars(select(Party).order_by(Party.iso))), PARTIES)
        taxa = list(session.scalars(select(Taxon).order_by(Taxon.name)))
        names = make_names(rng, NAMES)
        by_tier: dict[str, int] = {}
        public_ids: list[str] = []
        centres: list[str] = []
        networks: list[tuple[str, int]] = []
        files = 0
        chunk: list[Record] = []
        for built in make_records(rng, count, parties, taxa, names):
            record = built.record
            by_tier[record.tier] = by_tier.get(record.tier, 0) + 1
            files += len(record.files)
            if record.tier == "public":
                public_ids.append(record.id)
            if record.type == "rescue_centre":
                centres.append(record.id)
            if built.network_size:
                networks.append((record.id, built.network_size))
            chunk.append(record)
            if len(chunk) >= CHUNK:
                session.add_all(chunk)
                db.commit()
                chunk = []
        session.add_all(chunk)
        db.commit()
        members = [
            {"network_id": network, "centre_id": centre}
            for network, size in networks
            for centre in rng.sample(centres, min(size, len(centres)))
        ]
        if members:
            session.execute(insert(network_members), members)
        db.commit()
        return Loaded(records=count, by_tier=by_tier, files=files, public_ids=public_ids)


def records_in_batches(batch: int = CHUNK) -> Iterator[list[Record]]:
    """Every record with its files' text, ``batch`` at a time, so memory stays flat."""
    ids = list(session.scalars(select(Record.id).order_by(Record.id)))
    for start in range(0, len(ids), batch):
        stmt = (
            select(Record)
            .where(Record.id.in_(ids[start : start + batch]))
            .options(selectinload(Record.files).options(undefer(File.text)))
        )
        yield list(session.scalars(stmt))
        session.expunge_all()


# The yardstick: SQLite FTS5 -------------------------------------------------------------------------


def build_fts5(app: Flask, path: Path) -> tuple[sqlite3.Connection, int, int]:
    """An FTS5 table of each public record's ``body`` (from ``document_for``); returns (conn, docs, chars)."""
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute(
        "CREATE VIRTUAL TABLE docs USING fts5(id UNINDEXED, type UNINDEXED, body,"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    docs = chars = 0
    with app.app_context():
        for records in records_in_batches():
            rows = []
            for record in records:
                document = document_for(record, "public")
                if document is not None:
                    rows.append((record.id, record.type, document["body"]))
                    chars += len(document["body"])
            conn.executemany("INSERT INTO docs (id, type, body) VALUES (?, ?, ?)", rows)
            docs += len(rows)
    conn.execute("INSERT INTO docs (docs) VALUES ('optimize')")
    conn.commit()
    conn.execute("VACUUM")
    return conn, docs, chars


def to_fts5(text: str) -> str:
    """The user's query in FTS5 syntax: "phrases" kept, prefix* as ``"prefix" *``, words ANDed."""
    parts = []
    for match in re.finditer(r'"([^"]*)"|(\S+)', text):
        phrase, token = match.groups()
        if phrase is not None:
            parts.append('"' + phrase + '"')
        elif token.endswith("*"):
            parts.append('"' + token.rstrip("*") + '" *')
        else:
            parts.append('"' + token + '"')
    return " ".join(parts)


def fts5_search(conn: sqlite3.Connection, text: str) -> int:
    """One search request's work in FTS5: the top 20 by bm25, the total, the type facet. Returns the total."""
    match = to_fts5(text)
    conn.execute("SELECT id FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT 20", (match,)).fetchall()
    total = conn.execute("SELECT count(*) FROM docs WHERE docs MATCH ?", (match,)).fetchone()[0]
    conn.execute("SELECT type, count(*) FROM docs WHERE docs MATCH ? GROUP BY type", (match,)).fetchall()
    return int(total)


# Timing searches --------------------------------------------------------------------------------


_COUNT = re.compile(r'class="count">([^<]*)<')


def registry_search(client: Any, text: str) -> str:
    """One complete public search request; returns the page (fails loudly on an error status)."""
    response = client.get("/search", query_string={"q": text})
    if response.status_code != 200:
        raise RuntimeError(f"GET /search?q={text} answered {response.status_code}")
    return response.get_data(as_text=True)


def page_total(page: str) -> int:
    """The result count a search page shows."""
    match = _COUNT.search(page)
    return int(re.sub(r"\D", "", match.group(1)) or 0) if match else -1


def query_sequence(rng: random.Random, requests: int) -> list[tuple[str, str]]:
    """At least ``requests`` queries: the whole mix, shuffled, as many rounds as needed."""
    rounds = -(-requests // len(QUERIES))
    sequence: list[tuple[str, str]] = []
    for _ in range(rounds):
        batch = list(QUERIES)
        rng.shuffle(batch)
        sequence.extend(batch)
    return sequence


def time_queries(run: Callable[[str], object], sequence: list[tuple[str, str]]) -> Timings:
    """Time ``run(text)`` for every query of ``sequence``."""
    timings = Timings()
    for kind, text in sequence:
        start = time.perf_counter()
        run(text)
        timings.add(kind, text, time.perf_counter() - start)
    return timings


# Updates ----------------------------------------------------------------------------------------


def update_title(app: Flask, record_id: str, title: str) -> float:
    """Set a record's title with its index job in one transaction; returns the perf_counter before commit.

    In a request context, as a form's change is made: the commit wakes the worker's applier thread.
    """
    with app.test_request_context("/"):
        record = session.get(Record, record_id)
        record.title = title
        search.enqueue(record.id)
        started = time.perf_counter()
        db.commit()
    return started


def measure_update_visible(
    app: Flask, client: Any, ids: list[str], marker: str = "freshmark", timeout_s: float = 30.0
) -> list[float]:
    """Per id: add a new word to the title, commit, poll public search until it finds the record (ms)."""
    latencies = []
    for number, record_id in enumerate(ids):
        word = f"{marker}{number:03d}"
        with app.app_context():
            title = session.get(Record, record_id).title
        started = update_title(app, record_id, f"{title} {word}")
        while f"/records/{record_id}" not in registry_search(client, word):
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"{record_id} not searchable {timeout_s} s after its update")
            time.sleep(POLL_S)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _write_every(home: str, ids: list[str], interval: float, stop: Any, commits: Any) -> None:
    """The writer process: update titles in turn, one commit (and its index jobs) every ``interval`` s."""
    app = open_registry(Path(home))
    with app.app_context():
        titles = {i: session.get(Record, i).title for i in ids}
    number = 0
    while not stop.wait(interval):
        record_id = ids[number % len(ids)]
        started = update_title(app, record_id, f"{titles[record_id]} rev{number}")
        commits.put((time.perf_counter() - started) * 1000)
        number += 1
    commits.put(None)


class BackgroundWriter:
    """Another process of the same node (as another gunicorn worker would be) committing every ``interval``.

    Each of its commits writes index jobs and applies them to the node's indexes after commit, so
    the reader process has to notice the changed index and reopen its searchers.
    """

    def __init__(self, home: Path, ids: list[str], interval: float = WRITER_INTERVAL_S) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.queue = context.Queue()
        self.process = context.Process(
            target=_write_every, args=(str(home), ids, interval, self.stop_event, self.queue), daemon=True
        )
        self.commit_ms: list[float] = []

    def start(self) -> None:
        """Start the process and wait until it has committed once (it has imported everything by then)."""
        self.process.start()
        self.commit_ms.append(self.queue.get(timeout=120))

    def stop(self) -> None:
        """Stop after the current update, collect the commit times, and check the process ended well."""
        self.stop_event.set()
        while (value := self.queue.get(timeout=60)) is not None:
            self.commit_ms.append(value)
        self.process.join(timeout=60)
        if self.process.exitcode != 0:
            raise RuntimeError(f"the writer process failed (exit code {self.process.exitcode})")


# Profiling ----------------------------------------------------------------------------------------


def _where(filename: str, line: int, function: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{line}({function})"


def hot_spots(profiler: cProfile.Profile, title: str, repeats: int, top: int = 25) -> list[str]:
    """The top functions by own time, then the project's by cumulative time, in ms per repeat."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = [(tt, ct, nc, _where(*key)) for key, (_cc, nc, tt, ct, _callers) in stats.items()]
    per = 1000 / repeats
    lines = [f"{title} (ms per repeat, under cProfile)", "  by own time:"]
    for tt, ct, nc, where in sorted(rows, reverse=True)[:top]:
        lines.append(f"    {tt * per:8.2f} own {ct * per:8.2f} cum {nc / repeats:9.0f} calls  {where}")
    lines.append("  by cumulative time (project code):")
    project = [row for row in rows if row[3].startswith(("registry/", "templates/"))]
    for tt, ct, nc, where in sorted(project, key=lambda r: r[1], reverse=True)[:top]:
        lines.append(f"    {ct * per:8.2f} cum {tt * per:8.2f} own {nc / repeats:9.0f} calls  {where}")
    return lines


def profile_search(client: Any, text: str, repeats: int) -> list[str]:
    """cProfile ``repeats`` public searches for ``text``."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        registry_search(client, text)
    profiler.disable()
    return hot_spots(profiler, f"profile of GET /search?q={text}", repeats)


def profile_updates(app: Flask, client: Any, ids: list[str]) -> list[str]:
    """cProfile updates made searchable (the commit with its catch-up, then the searches that find them)."""
    profiler = cProfile.Profile()
    profiler.enable()
    measure_update_visible(app, client, ids, marker="profiledmark")
    profiler.disable()
    return hot_spots(profiler, "profile of update -> searchable", len(ids))


# The run ----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1000, help="how many records to generate")
    parser.add_argument("--requests", type=int, default=250, help="timed search requests (at least 200)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the corpus and the query order")
    parser.add_argument("--writer", action="store_true", help="time searches while another process writes")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="parrot quarantine",
        default=None,
        metavar="QUERY",
        help='cProfile one query (default "parrot quarantine") and print the hot spots',
    )
    parser.add_argument("--profile-repeats", type=int, default=20, help="searches profiled")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="build the registry here and keep it (must be empty)"
    )
    args = parser.parse_args(argv)
    if args.requests < 200:
        parser.error("--requests must be at least 200")
    return args


def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    """The whole benchmark in ``home``; returns the figures of the final JSON line."""
    started = time.perf_counter()
    rng = random.Random(args.seed)
    app = make_registry(home)

    clock = time.perf_counter()
    loaded = load_corpus(app, args.records, rng)
    load_s = time.perf_counter() - clock
    say(f"loaded {loaded.records} records in {load_s:.1f} s: {loaded.by_tier}, {loaded.files} with a file")

    with app.app_context():
        clock = time.perf_counter()
        counts = search.indexes().rebuild(session)
        build_s = time.perf_counter() - clock
        public_folder = search.indexes().folder("public")
        assert public_folder is not None
        jobs = session.scalar(select(func.count()).select_from(IndexJob))
    index_mb = folder_mb(public_folder)
    all_indexes_mb = folder_mb(Path(app.config["INDEX_DIR"]))
    say(f"rebuilt the indexes in {build_s:.1f} s: {counts}")
    say(f"index size: public {index_mb:.1f} MB, all three tiers {all_indexes_mb:.1f} MB")
    assert jobs == 0, "the bulk load must not write index jobs"

    clock = time.perf_counter()
    conn, fts_docs, fts_chars = build_fts5(app, home / "fts5.sqlite")
    fts5_build_s = time.perf_counter() - clock
    fts5_mb = (home / "fts5.sqlite").stat().st_size / 1e6
    say(
        f"built FTS5 over {fts_docs} public bodies ({fts_chars / max(fts_docs, 1) / 1000:.1f} KB each)"
        f" in {fts5_build_s:.1f} s: {fts5_mb:.1f} MB"
    )

    client = app.test_client()
    sequence = query_sequence(rng, args.requests)
    say(f"warm-up: {len(QUERIES)} queries; total hits registry / FTS5 (FTS5 does not stem):")
    for kind, text in QUERIES:
        total = page_total(registry_search(client, text))
        say(f"  {kind:9} {text:26} {total:6d} / {fts5_search(conn, text):6d}")

    registry_times = time_queries(lambda text: registry_search(client, text), sequence)
    fts5_times = time_queries(lambda text: fts5_search(conn, text), sequence)
    figures = {**registry_times.summary(), **fts5_times.summary("fts5_")}
    say(f"{len(sequence)} public searches, ms: p50 {figures['p50_ms']:.1f}  p95 {figures['p95_ms']:.1f}")
    say(f"the same queries in FTS5, ms: p50 {figures['fts5_p50_ms']:.2f}  p95 {figures['fts5_p95_ms']:.2f}")
    for group in (*KINDS, "accented", "plain"):
        say(
            f"  {group:9}  registry p50 {figures[f'p50_ms_{group}']:7.1f}"
            f"  p95 {figures[f'p95_ms_{group}']:7.1f}"
            f"   FTS5 p50 {figures[f'fts5_p50_ms_{group}']:6.2f}  p95 {figures[f'fts5_p95_ms_{group}']:6.2f}"
        )
    say("  slowest requests: " + ", ".join(f"{text} {ms:.0f} ms" for _, text, ms in registry_times.slowest()))

    update_ids = rng.sample(loaded.public_ids, min(UPDATES, len(loaded.public_ids)))
    visible = measure_update_visible(app, client, update_ids)
    figures["update_visible_p50_ms"] = round(percentile(visible, 50), 2)
    figures["update_visible_p95_ms"] = round(percentile(visible, 95), 2)
    say(
        f"update -> searchable ({len(visible)} updates), ms: p50 {figures['update_visible_p50_ms']:.1f}"
        f"   p95 {figures['update_visible_p95_ms']:.1f}   max {max(visible):.1f}"
    )

    if args.writer:
        writer = BackgroundWriter(home, rng.sample(loaded.public_ids, min(50, len(loaded.public_ids))))
        writer.start()
        try:
            under_write = time_queries(lambda text: registry_search(client, text), sequence)
        finally:
            writer.stop()
        figures["writer_p50_ms"] = round(percentile(under_write.values(), 50), 2)
        figures["writer_p95_ms"] = round(percentile(under_write.values(), 95), 2)
        figures["writer_commits"] = len(writer.commit_ms)
        figures["writer_commit_p95_ms"] = round(percentile(writer.commit_ms, 95), 2)
        say(
            f"with a commit every {WRITER_INTERVAL_S} s ({len(writer.commit_ms)} commits, p95"
            f" {figures['writer_commit_p95_ms']:.0f} ms each): p50 {figures['writer_p50_ms']:.1f}"
            f"   p95 {figures['writer_p95_ms']:.1f}"
        )

    if args.profile:
        for line in profile_search(client, args.profile, args.profile_repeats):
            say(line)
        profiled_ids = rng.sample(loaded.public_ids, min(10, len(loaded.public_ids)))
        for line in profile_updates(app, client, profiled_ids):
            say(line)

    conn.close()
    with app.app_context():
        search.indexes().close()
        db.get_engine().dispose()
    return {
        "records": loaded.records,
        "public_records": counts.get("public", 0),
        "files": loaded.files,
        "requests": len(sequence),
        "load_s": round(load_s, 2),
        "build_s": round(build_s, 2),
        "fts5_build_s": round(fts5_build_s, 2),
        **figures,
        "ratio_p95": round(figures["p95_ms"] / figures["fts5_p95_ms"], 1) if figures["fts5_p95_ms"] else None,
        "index_mb": round(index_mb, 2),
        "all_indexes_mb": round(all_indexes_mb, 2),
        "fts5_mb": round(fts5_mb, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "total_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark in a temporary folder and print the figures, the JSON object last."""
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        if any(args.workdir.iterdir()):
            raise SystemExit(f"--workdir {args.workdir} is not empty")
        figures = run(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="registry-bench-") as folder:
            figures = run(args, Path(folder))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
