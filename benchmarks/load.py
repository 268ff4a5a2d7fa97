"""Load benchmark: the registry under gunicorn, driven by concurrent virtual users over loopback.

Run from the project folder::

    .venv/bin/python benchmarks/load.py                        # 50 users for 60 s
    .venv/bin/python benchmarks/load.py --users 20 --seconds 20

The registry is the demo data (``flask seed``) plus ``--records`` generated records
(``benchmarks/corpus.py``, as for ``search.py``), built once into ``benchmarks/out/load-home`` and
reused while its recipe (records, seed, schema revision, demo data) is the same. It is served as
``make run`` serves it: gunicorn with ``registry.gunicorn_conf`` and ``--workers`` workers, on a free
loopback port, with the rate limits of search and browse raised so that one address may send the whole
load. Each virtual user is a thread that sends one request, waits a think time (uniform from 0 to twice
``--think`` seconds), and goes again: browse pages of ``/records`` with filters and page numbers,
record pages, searches with the corpus' words (some with filters) and downloads of public files.
Every answer other than 200 counts as an error. The workers keep anonymous pages as served
(``PAGE_CACHE_MB``, ``registry.pagecache``); ``--page-cache-mb 0`` measures every page rendered afresh.
Human-readable figures come first; the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    # Run as a script (``python benchmarks/load.py``): make the project importable.
    sys.path.insert(0, str(ROOT))

from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import select  # noqa: E402

import registry  # noqa: E402
from benchmarks.search import QUERIES, load_corpus, percentile  # noqa: E402
from registry import migrate, policy  # noqa: E402
from registry.db import session  # noqa: E402
from registry.models import File, Party, Record  # noqa: E402
from registry.vocab import RECORD_TYPES, REGIONS  # noqa: E402

HOME = ROOT / "benchmarks" / "out" / "load-home"
BIN = Path(sys.executable).parent
SEED = 2021_008
# The mix: how often each kind of request is sent.
MIX = {"browse": 25, "record": 35, "search": 30, "download": 10}
# Limits high enough that one address may send the whole load (registry.ratelimit counts per address).
UNLIMITED = {"RATE_LIMIT_SEARCH": "1000000/minute", "RATE_LIMIT_BROWSE": "1000000/minute"}


def say(line: str) -> None:
    """Print a progress line at once."""
    print(line, flush=True)


# The registry ----------------------------------------------------------------------------------------


def registry_env(home: Path, page_cache_mb: float | None = None) -> dict[str, str]:
    """The environment of the commands and of gunicorn: a development home on its own SQLite file
    (with each worker's page cache of ``page_cache_mb``, when given)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    if page_cache_mb is not None:
        env["PAGE_CACHE_MB"] = f"{page_cache_mb:g}"
    return {**env, "REGISTRY_ENV": "development", "REGISTRY_HOME": str(home), **UNLIMITED}


def recipe(records: int) -> dict[str, Any]:
    """What the cached home was built from: any change builds it again."""
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    demo = hashlib.sha256((ROOT / "seed" / "demo.json").read_bytes()).hexdigest()
    return {"records": records, "seed": SEED, "revision": head, "demo": demo}


def build_home(home: Path, records: int) -> None:
    """The demo data plus ``records`` generated records, indexed, in ``home`` (reused when up to date)."""
    wanted = recipe(records)
    marker = home / "load-recipe.json"
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        say(f"Reusing the registry in {home} ({records} generated records).")
        return
    started = time.monotonic()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = registry_env(home)
    flask = [str(BIN / "flask"), "--app", "registry"]
    say(f"Building the registry in {home}: demo data ...")
    for command in (["init-db"], ["seed"]):
        subprocess.run([*flask, *command], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    say(f"... {records} generated records ...")
    app = registry.create_app({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(home)})
    load_corpus(app, records, random.Random(SEED))
    say("... the search indexes (flask reindex) ...")
    subprocess.run([*flask, "reindex"], env=env, cwd=ROOT, check=True)
    marker.write_text(json.dumps(wanted))
    say(f"Built in {time.monotonic() - started:.0f} s.")


@dataclass
class Targets:
    """What the virtual users ask for: public records, downloadable files, Parties and queries."""

    records: list[str]
    files: list[str]
    parties: list[str]
    queries: list[str] = field(default_factory=lambda: [text for _, text in QUERIES])


def find_targets(home: Path) -> Targets:
    """The published public records and files anonymous visitors may open, read through the policy."""
    app = registry.create_app({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(home)})
    anonymous = policy.audience("public")
    with app.app_context():
        records = list(session.scalars(policy.visible(select(Record.id), anonymous).order_by(Record.id)))
        rows = session.execute(
            select(File.id, File.stored_name)
            .join(Record, File.record_id == Record.id)
            .where(policy.visible_files_clause(anonymous))
            .order_by(File.id)
        ).all()
        # The generated records' files have text but no bytes on disk: only the demo's are downloaded.
        files_dir = Path(app.config["FILES_DIR"])
        files = [file_id for file_id, stored in rows if (files_dir / stored).is_file()]
        parties = list(
            session.scalars(select(Record.party_iso).where(Record.party_iso.is_not(None)).distinct())
        )
        parties = sorted(p for p in parties if p and session.get(Party, p) is not None)
    return Targets(records=records, files=files, parties=parties)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    home: Path, port: int, workers: int, log: Path, page_cache_mb: float
) -> subprocess.Popen[bytes]:
    """gunicorn as ``make run`` starts it; returns once it answers."""
    command = [
        str(BIN / "gunicorn"),
        "--config",
        "python:registry.gunicorn_conf",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "registry:create_app()",
    ]
    with log.open("w") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env=registry_env(home, page_cache_mb), stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn stopped: see {log}")
        try:
            if fetch(port, "/")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not answer within 60 s")


# The load ----------------------------------------------------------------------------------------------


def fetch(port: int, path: str) -> tuple[int, int]:
    """GET ``path``; its status and the length of its body, read whole."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Accept-Language": "en"})
        answer = connection.getresponse()
        return answer.status, len(answer.read())
    finally:
        connection.close()


def next_request(rng: random.Random, targets: Targets) -> tuple[str, str]:
    """One request of the mix: its kind and its path."""
    kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    if kind == "browse":
        filters: dict[str, Any] = {}
        choice = rng.random()
        if choice < 0.3:
            filters["type"] = rng.choice(RECORD_TYPES)
        elif choice < 0.5:
            filters["region"] = rng.choice(REGIONS)
        elif choice < 0.7:
            filters["party"] = rng.choice(targets.parties)
        elif choice < 0.8:
            filters["language"] = rng.choice(("en", "fr", "es"))
        filters["page"] = rng.choice((1, 1, 1, 2, 3, 5)) if not filters else rng.choice((1, 1, 2))
        return kind, "/records?" + urllib.parse.urlencode(filters)
    if kind == "record":
        return kind, f"/records/{rng.choice(targets.records)}"
    if kind == "search":
        query: dict[str, Any] = {"q": rng.choice(targets.queries)}
        choice = rng.random()
        if choice < 0.15:
            query["type"] = rng.choice(RECORD_TYPES)
        elif choice < 0.25:
            query["language"] = rng.choice(("en", "fr", "es"))
        elif choice < 0.3:
            query["sort"] = "date"
        return kind, "/search?" + urllib.parse.urlencode(query)
    return kind, f"/files/{rng.choice(targets.files)}"


@dataclass
class Sample:
    """One answered (or failed) request."""

    kind: str
    seconds: float
    status: int
    path: str


def virtual_user(
    number: int, port: int, targets: Targets, think: float, start: float, stop: float, out: list[Sample]
) -> None:
    """Send requests with think times between them until ``stop``; keep those sent after ``start``."""
    rng = random.Random(SEED + number)
    while (now := time.monotonic()) < stop:
        kind, path = next_request(rng, targets)
        began = time.perf_counter()
        try:
            status = fetch(port, path)[0]
        except OSError:
            status = 0
        elapsed = time.perf_counter() - began
        if now >= start:
            out.append(Sample(kind, elapsed, status, path))
        time.sleep(rng.uniform(0, 2 * think))


def figures(samples: list[Sample], seconds: float) -> dict[str, Any]:
    """Requests per second, latency percentiles (ms) and errors, for ``samples`` over ``seconds``."""
    times = [s.seconds * 1000 for s in samples]
    return {
        "requests": len(samples),
        "rps": round(len(samples) / seconds, 1),
        "p50_ms": round(percentile(times, 50), 1) if times else None,
        "p95_ms": round(percentile(times, 95), 1) if times else None,
        "p99_ms": round(percentile(times, 99), 1) if times else None,
        "errors": sum(1 for s in samples if s.status != 200),
    }


def cpu_seconds(who: int) -> float:
    """User and system CPU seconds of this process (``RUSAGE_SELF``) or of its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--users", type=int, default=50, help="concurrent virtual users (default 50)")
    parser.add_argument("--seconds", type=float, default=60, help="timed length of the run (default 60)")
    parser.add_argument("--warmup", type=float, default=5, help="untimed seconds before it (default 5)")
    parser.add_argument("--think", type=float, default=0.25, help="mean think time, seconds (default 0.25)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--records", type=int, default=5000, help="generated records (default 5000)")
    parser.add_argument(
        "--page-cache-mb",
        type=float,
        default=32,
        help="each worker's cache of anonymous pages, PAGE_CACHE_MB (default 32, as served; 0: none)",
    )
    parser.add_argument("--home", type=Path, default=HOME, help=f"the cached registry (default {HOME})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Build or reuse the registry, serve it, load it, print the figures."""
    args = parse_args(argv)
    home = args.home.resolve()
    build_home(home, args.records)
    targets = find_targets(home)
    say(f"{len(targets.records)} public records, {len(targets.files)} public files on disk.")
    port = free_port()
    log = home.parent / "load-access.log"
    children_before = cpu_seconds(resource.RUSAGE_CHILDREN)
    self_before = cpu_seconds(resource.RUSAGE_SELF)
    load_before = os.getloadavg()[0]
    server = start_server(home, port, args.workers, log, args.page_cache_mb)
    samples: list[Sample] = []
    try:
        # Requests of the warm-up (each worker opens its searchers, compiles its templates) are not kept.
        start = time.monotonic() + args.warmup
        stop = start + args.seconds
        say(
            f"{args.users} users, page cache {args.page_cache_mb:g} MB a worker, "
            f"{args.warmup:g} s warm-up, {args.seconds:g} s timed, think {args.think:g} s ..."
        )
        threads = [
            threading.Thread(target=virtual_user, args=(n, port, targets, args.think, start, stop, samples))
            for n in range(args.users)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load_after = os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)
    result: dict[str, Any] = {
        "users": args.users,
        "seconds": args.seconds,
        "think_s": args.think,
        "workers": args.workers,
        "records": args.records,
        "page_cache_mb": args.page_cache_mb,
        "overall": figures(samples, args.seconds),
        "by_kind": {kind: figures([s for s in samples if s.kind == kind], args.seconds) for kind in MIX},
        "server_cpu_s": round(cpu_seconds(resource.RUSAGE_CHILDREN) - children_before, 1),
        "load_generator_cpu_s": round(cpu_seconds(resource.RUSAGE_SELF) - self_before, 1),
        "loadavg_1min_before_after": [round(load_before, 2), round(load_after, 2)],
    }
    say("")
    say(f"{'kind':<10} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, row in [("all", result["overall"]), *result["by_kind"].items()]:
        say(
            f"{name:<10} {row['requests']:>9} {row['rps']:>7} {row['p50_ms']!s:>8} {row['p95_ms']!s:>8} "
            f"{row['p99_ms']!s:>8} {row['errors']:>7}"
        )
    errors = [s for s in samples if s.status != 200]
    for sample in errors[:10]:
        say(f"error: {sample.status} {sample.path}")
    say(
        f"CPU seconds: gunicorn {result['server_cpu_s']}, "
        f"this load generator {result['load_generator_cpu_s']} "
        f"(both on the same {os.cpu_count()} cores); 1-minute load average {load_before:.2f} before, "
        f"{load_after:.2f} at the end. Access log: {log}"
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
