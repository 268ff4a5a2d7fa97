"""The page cache (issue 11, item 9): anonymous visitors' pages are kept per worker, and any change to
what a page shows, made by any worker or command, ends them at that worker's very next request.

Two applications on one database stand for two gunicorn workers, as in ``test_rate_limits``."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import select, text

from registry import generation, policy
from registry.db import commit, session
from registry.models import AuditEvent, ContentGeneration, Record
from registry.pagecache import PageCache
from registry.services import audit
from registry.services.records import review, tiers

from .conftest import dispose, fresh_database, load_reference, login, make_app
from .factories import PASSWORD, make_record, make_user

MARKER = "Kestrelcache7"


@pytest.fixture
def workers(request, backend, templates, tmp_path):  # type: ignore[no-untyped-def]
    """Two applications on one database, each with its own page cache: ``workers(**config)``."""
    made: list[Flask] = []

    def factory(**config: object) -> tuple[Flask, Flask]:
        folder = tmp_path / f"pair-{len(made)}"
        url = fresh_database(request, backend, templates, folder / "db")
        pair = (make_app(url, folder / "home-1", **config), make_app(url, folder / "home-2", **config))
        with pair[0].app_context():
            load_reference()
            make_user("enforcement")
        made.extend(pair)
        return pair

    yield factory
    for application in made:
        dispose(application)


def _kept(app: Flask) -> int:
    """How many pages ``app``'s worker keeps."""
    return len(app.extensions["registry.pagecache"]._pages)


def _count(app: Flask) -> int:
    with app.app_context():
        found = generation.current(session)
        assert found is not None
        return found


def test_a_record_raised_on_another_worker_is_gone_from_every_kept_page(workers):
    """Worker A keeps the record page, the browse page and the home page of a public record; worker B
    raises it to confidential; A's next answers are the 404 and pages without it, as without a cache."""
    first, second = workers()
    with first.app_context():
        record_id = make_record(title=f"{MARKER} protocol for parrots").id
    visitor = first.test_client()
    pages = [f"/records/{record_id}", "/records", "/", "/parties/ZA"]
    for page in pages:
        assert MARKER in visitor.get(page).get_data(as_text=True), page
    kept = _kept(first)
    assert kept == len(pages)
    # Served again from the cache: the same bytes, and nothing more kept.
    assert MARKER in visitor.get(f"/records/{record_id}").get_data(as_text=True)
    assert _kept(first) == kept
    with second.app_context():
        record = session.get(Record, record_id)
        tiers.change_tier(policy.SYSTEM, record, "confidential", "The keeper asked for it.")
        commit()
    assert visitor.get(f"/records/{record_id}").status_code == 404
    for page in pages[1:]:
        assert MARKER not in visitor.get(page).get_data(as_text=True), page
    # Signed-in viewers never get a kept page, and their pages are never kept.
    officer = first.test_client()
    assert login(officer, "enforcement-x@test.example", PASSWORD).status_code == 302
    assert MARKER in officer.get(f"/records/{record_id}").get_data(as_text=True)
    assert MARKER in officer.get("/records").get_data(as_text=True)
    assert MARKER not in visitor.get("/records").get_data(as_text=True)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_write_to_a_shown_table_bumps_the_generation_and_only_those(workers):
    """The class, not the instance: a service's change, raw SQL run by the session, a withdrawal, each
    counts one more, in its own transaction (a rollback takes the bump back); the audit trail does not."""
    app, _ = workers()
    with app.app_context():
        record_id = make_record(title="Counted").id
    before = _count(app)
    with app.app_context():
        renamed = text("UPDATE records SET title = 'Renamed by hand' WHERE id = :id")
        session.execute(renamed, {"id": record_id})
        commit()
    assert _count(app) == before + 1
    with app.app_context():
        review.withdraw(policy.SYSTEM, session.get(Record, record_id), "Closed.")
        session.rollback()
    assert _count(app) == before + 1
    with app.app_context():
        audit.log(None, "download", record=session.get(Record, record_id))
        commit()
        assert session.scalar(select(AuditEvent.id)) is not None
    assert _count(app) == before + 1
    with app.app_context():
        review.withdraw(policy.SYSTEM, session.get(Record, record_id), "Closed.")
        commit()
    assert _count(app) > before + 1


@pytest.mark.parametrize("backend", ["sqlite"])
def test_kept_pages_still_count_against_the_rate_limit_and_cookies_keep_a_page_out(workers):
    """The cache sits inside the rate limit: the 4th browse of 3 a minute is refused even when kept. A page
    that sets a cookie (a language chosen with ?lang=) is not kept, and each language has its own page."""
    app, _ = workers(RATE_LIMIT_BROWSE="3/minute")
    visitor = app.test_client()
    for _ in range(3):
        assert visitor.get("/records").status_code == 200
    assert _kept(app) == 1
    assert visitor.get("/records").status_code == 429
    chooser = app.test_client()
    chosen = chooser.get("/records?lang=fr", environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert chosen.status_code == 200 and "Set-Cookie" in chosen.headers
    assert _kept(app) == 1
    french = chooser.get("/records", environ_base={"REMOTE_ADDR": "192.0.2.8"})
    assert '<html lang="fr"' in french.get_data(as_text=True)
    assert _kept(app) == 2
    english = app.test_client().get("/records", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert '<html lang="en"' in english.get_data(as_text=True)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_no_cache_when_turned_off_or_the_generation_is_missing(workers):
    """PAGE_CACHE_MB=0 keeps nothing; a database without the generation row keeps nothing either."""
    off, _ = workers(PAGE_CACHE_MB=0)
    assert "registry.pagecache" not in off.extensions
    assert off.test_client().get("/records").status_code == 200
    on, _ = workers()
    with on.app_context():
        session.execute(ContentGeneration.__table__.delete())
        commit()
    assert on.test_client().get("/records").status_code == 200
    assert _kept(on) == 0


def test_the_cache_forgets_an_older_generation_and_stays_within_its_size():
    """Pages of another generation are dropped at once; the least recently used go first; a page kept
    under an older count than the one already seen is never stored."""
    from registry.pagecache import Page

    cache = PageCache(max_bytes=100, max_age=60)
    page = Page(200, (), b"x" * 10, time.monotonic() - 3600)
    fresh = Page(200, (), b"x" * 10, 1e12)
    cache.put(1, ("a",), fresh)
    assert cache.get(1, ("a",)) is fresh
    assert cache.get(2, ("a",)) is None
    cache.put(1, ("b",), fresh)
    assert cache.get(2, ("b",)) is None
    # A request that read an older count finds nothing and does not take the cache back to it.
    cache.put(2, ("b",), fresh)
    assert cache.get(1, ("b",)) is None and cache.get(2, ("b",)) is fresh
    for n in range(12):
        cache.put(2, (n,), fresh)
    assert cache._bytes <= 100 and cache.get(2, (0,)) is None and cache.get(2, (11,)) is fresh
    # Too old (kept an hour ago, max_age 60 s): dropped when asked for.
    cache.put(2, ("old",), page)
    assert cache.get(2, ("old",)) is None


def test_workers_of_a_node_share_kept_pages_and_a_change_ends_them_on_every_worker(workers, tmp_path):
    """With one ``PAGE_CACHE_DIR``, a page worker A rendered is worker B's hit (B serves A's bytes, shown
    here by altering the shared file); a change made on B ends it on both, and the older generation's
    folder is deleted."""
    shared = tmp_path / "shared-pages"
    first, second = workers(PAGE_CACHE_DIR=str(shared))
    with first.app_context():
        record_id = make_record(title=f"{MARKER} shared protocol").id
    page = f"/records/{record_id}"
    assert MARKER in first.test_client().get(page).get_data(as_text=True)
    count = _count(first)
    files = list((shared / str(count)).iterdir())
    assert len(files) == 1 and _kept(second) == 0
    head, body = files[0].read_bytes().split(b"\n", 1)
    files[0].write_bytes(head + b"\n" + body.replace(MARKER.encode(), b"Sharedcopy9"))
    served = second.test_client().get(page)
    assert served.status_code == 200 and "Sharedcopy9" in served.get_data(as_text=True)
    assert _kept(second) == 1 and served.headers["Content-Security-Policy"]
    with second.app_context():
        tiers.change_tier(policy.SYSTEM, session.get(Record, record_id), "confidential", "The keeper asked.")
        commit()
    for app in (first, second):
        assert app.test_client().get(page).status_code == 404
    assert not (shared / str(count)).exists()


def test_shared_pages_keep_one_generation_within_their_size_and_age(tmp_path):
    """A page shared under an older count than one seen is neither written nor read; a worker deletes
    the oldest pages it wrote past its size; a page older than its age, or another key's file, is not
    served."""
    from registry.pagecache import Page, SharedPages

    pages = SharedPages(tmp_path, max_bytes=100, max_age=60)
    fresh = Page(200, (("Content-Type", "text/html"),), b"x" * 30, time.monotonic())
    pages.put(3, ("a",), fresh)
    found = pages.get(3, ("a",))
    assert found is not None and found.body == fresh.body and found.headers == fresh.headers
    pages.put(4, ("b",), fresh)
    assert not (tmp_path / "3").exists()
    pages.put(3, ("c",), fresh)
    assert pages.get(3, ("a",)) is None and not (tmp_path / "3").exists()
    for n in range(5):
        pages.put(4, (n,), fresh)
    assert sum(path.stat().st_size > 0 for path in (tmp_path / "4").iterdir()) == 3
    assert pages.get(4, (0,)) is None and pages.get(4, (4,)) is not None
    pages.put(4, ("old",), Page(200, (), b"y", time.monotonic() - 3600))
    assert pages.get(4, ("old",)) is None
    # A file whose key is not the one asked for (a digest collision, a tampered file) is not served.
    pages._path(4, ("d",)).write_bytes(pages._path(4, (4,)).read_bytes())
    assert pages.get(4, ("d",)) is None
