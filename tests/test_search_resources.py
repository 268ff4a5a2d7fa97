"""Search under a server that starts a thread per request: searchers are shared, bounded and closed."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

import pytest

from registry import search
from registry.search import engine, segments
from registry.search import index as tier_index

from .factories import import_payload, record_data

SEARCHES = 300
AT_ONCE = 10
# Descriptors other than the index's may vary a little (pooled database connections, say).
OTHER_SLACK = 10


def _descriptors(index_dir: Path) -> tuple[list[str], int]:
    """The files of ``index_dir`` this process holds open, and how many other descriptors it has."""
    held, other = [], 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # the descriptor of the listing itself, closed meanwhile
            continue
        if target.startswith(f"{index_dir}/"):
            held.append(target)
        else:
            other += 1
    return held, other


# Searchers belong to the node's indexes, whatever the database: run once, on SQLite, for the suite's time.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_searches_from_fresh_threads_keep_open_files_flat(app, runner, monkeypatch):
    """Issue 10, item 8: every search of the threaded dev server runs in a new thread. Searchers are
    shared by all threads, at most a few per tier, and those of a superseded index (a commit, a
    reindex) are closed once no search uses them, also one in use while the index changed: the
    open files stay flat whatever the traffic."""
    # Every search must reach the index: no page kept for anonymous visitors answers one instead.
    app.extensions.pop("registry.pagecache")
    guard = threading.Lock()
    opened, open_at_once = [], []
    open_searcher = segments.open_searcher

    def spy_open(ix):
        searcher = open_searcher(ix)
        with guard:
            opened.append(searcher)
            open_at_once.append(sum(not s.is_closed for s in opened))
        return searcher

    in_use: set[int] = set()
    shared: list[int] = []
    holding, release = threading.Event(), threading.Event()
    collect = engine._collect

    def exclusive_collect(indexes, searcher, *args):
        # A Whoosh searcher seeks and reads shared file objects: one search at a time may use it.
        with guard:
            if id(searcher) in in_use:
                shared.append(id(searcher))
            in_use.add(id(searcher))
        try:
            if threading.current_thread().name == "holder":
                holding.set()
                release.wait(30)
            else:
                time.sleep(0.005)  # hold it a moment, so that concurrent searches need several
            return collect(indexes, searcher, *args)
        finally:
            with guard:
                in_use.discard(id(searcher))

    monkeypatch.setattr(segments, "open_searcher", spy_open)
    monkeypatch.setattr(engine, "_collect", exclusive_collect)
    with app.app_context():
        import_payload([record_data(title=f"Lorikeet resource probe {i}") for i in range(5)])
        index_dir = search.indexes().root
    expected = 5
    failures: list[str] = []

    def one_search(wanted: int) -> None:
        try:
            response = app.test_client().get("/search?q=lorikeet+probe")
            count = re.search(r'class="count">(\d+)', response.get_data(as_text=True))
            if response.status_code != 200 or count is None or int(count.group(1)) != wanted:
                failures.append(f"{response.status_code} {count and count.group(1)} (wanted {wanted})")
        except Exception as exc:  # noqa: BLE001 - any failure of a request fails the test
            failures.append(repr(exc))

    def burst() -> None:
        threads = [threading.Thread(target=one_search, args=(expected,)) for _ in range(AT_ONCE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def check() -> None:
        assert failures == [] and shared == []
        still_open = [s for s in opened if not s.is_closed]
        assert len(still_open) <= tier_index.SEARCHERS_PER_TIER
        assert all(s.up_to_date() for s in still_open)
        with app.app_context():
            live = search.indexes().folder("public")
        segment_files = [name for name in os.listdir(live) if name.endswith((".trm", ".pst", ".col"))]
        held, other = _descriptors(index_dir)
        # Only the live files of the searched tier, as many times as there are pooled searchers.
        assert all(path.startswith(f"{live}/") and not path.endswith("(deleted)") for path in held), held
        assert len(held) <= len(still_open) * len(segment_files)
        assert other <= other_baseline + OTHER_SLACK

    burst()
    burst()
    _, other_baseline = _descriptors(index_dir)
    for number in range(SEARCHES // AT_ONCE):
        if number % 5 == 4:
            # One search holds a searcher of the index as it was while the index changes (a record
            # published, or a reindex that swaps the folder) and the others go on searching.
            holding.clear()
            release.clear()
            holder = threading.Thread(target=one_search, args=(expected,), name="holder")
            holder.start()
            assert holding.wait(30)
            if number == 14:
                assert runner.invoke(args=["reindex"]).exit_code == 0
            else:
                with app.app_context():
                    import_payload([record_data(title=f"Lorikeet resource probe added {number}")])
                expected += 1
            burst()
            release.set()
            holder.join()
        else:
            burst()
        check()
    # Concurrent searches shared a few searchers, never more than the bound, and reused them.
    assert 1 < max(open_at_once) <= tier_index.SEARCHERS_PER_TIER, open_at_once
    assert len(opened) < SEARCHES // 4
    with app.app_context():
        search.indexes().close()
    assert all(s.is_closed for s in opened)
    assert _descriptors(index_dir)[0] == []
