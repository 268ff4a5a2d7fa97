"""Rendered public pages, kept per worker for anonymous visitors, under the content generation.

Anonymous visitors all see the same page for the same address and language, so a worker keeps
what it rendered for them and serves it again until anything a page can show changes: every entry
is kept under the content generation (``registry.generation``) read *before* the page read its data,
and used only while the generation is still the same. The data of a page kept under a count is
thus never older than that count, and a change (a record raised to confidential, a file withdrawn)
is seen by every worker at its very next request, as without the cache.

Only what cannot depend on the visitor is kept:

* the endpoints of ``CACHED``, for a GET or HEAD with no signed-in user, an empty session and no
  ``Authorization`` header, answered 200 with HTML, that set no cookie and left the session empty;
* under the host, the path with its query string as sent, and the page's language;
* for search, only when every tier's index had applied the whole outbox when the search began
  (so the hits are those of the data kept under that count), and the search was not cut short.

A page is kept at most ``PAGE_CACHE_SECONDS`` (for anything rendered from the clock), and a
worker's pages take at most ``PAGE_CACHE_MB``; 0 turns the cache off.

Every worker of a node also shares what it kept through ``PAGE_CACHE_DIR`` (``SharedPages``): one
folder per generation, one file per page, so a page one worker rendered is the other workers' hit
too. The same rules hold there: a file is read only under the generation it was written under, and
a worker that sees a newer generation deletes the folders of older ones. The folder is emptied when
the application starts (a database replaced under the same home begins its count again). The view's rate limit
still counts every request (the cache sits inside it), and the response headers (security,
caching, language) are added to a kept page as to a fresh one.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, make_response, request, request_finished, session
from flask_login import current_user

from . import generation, search
from .db import session as db_session
from .i18n import current_language

# Endpoint -> whether its page depends on the search indexes too.
CACHED: dict[str, bool] = {
    "public.home": False,
    "public.browse": False,
    "public.record": False,
    "public.parties": False,
    "public.party": False,
    "public.search_page": True,
}
_KEPT_HEADERS = ("Content-Type", "Content-Language", "Vary")


@dataclass(frozen=True)
class Page:
    """A kept page: what the view returned, and when."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    kept_at: float


class PageCache:
    """One worker's pages, least recently used first, under one content generation at a time."""

    def __init__(self, max_bytes: int, max_age: float, shared: SharedPages | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.shared = shared
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._pages: OrderedDict[tuple[Any, ...], Page] = OrderedDict()
        self._bytes = 0

    def get(self, count: int, key: tuple[Any, ...]) -> Page | None:
        """The page kept for ``key`` under generation ``count``, if it is still fresh: this worker's
        own, or one another worker shared."""
        with self._lock:
            if self._generation is not None and count < self._generation:
                # A request that read the count just before a change: it keeps nothing of the newer pages.
                return None
            self._turn(count)
            page = self._pages.get(key)
            if page is not None and time.monotonic() - page.kept_at > self.max_age:
                self._drop(key)
                page = None
            if page is not None:
                self._pages.move_to_end(key)
                return page
        if self.shared is None:
            return None
        page = self.shared.get(count, key)
        if page is not None:
            self._keep(count, key, page)
        return page

    def put(self, count: int, key: tuple[Any, ...], page: Page) -> None:
        """Keep ``page`` for ``key`` under generation ``count`` (dropped at once if that is past),
        and share it with the other workers."""
        if len(page.body) > self.max_bytes // 8:
            return
        if self._keep(count, key, page) and self.shared is not None:
            self.shared.put(count, key, page)

    def _keep(self, count: int, key: tuple[Any, ...], page: Page) -> bool:
        size = len(page.body)
        with self._lock:
            if self._generation is not None and count < self._generation:
                return False
            self._turn(count)
            if key in self._pages:
                self._drop(key)
            self._pages[key] = page
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._pages)))
            return True

    def _turn(self, count: int) -> None:
        """Forget every page of another generation: none of them can be served again."""
        if count != self._generation:
            self._pages.clear()
            self._bytes = 0
            self._generation = count

    def _drop(self, key: tuple[Any, ...]) -> None:
        self._bytes -= len(self._pages.pop(key).body)


class SharedPages:
    """Pages every worker of a node reads, in ``folder/<generation>/<sha256 of the key>``.

    Each file is the page's key, status, headers and wall-clock time as one JSON line, then the body;
    it is written to a temporary name and renamed, so a reader sees a whole page or none. A worker
    deletes the oldest files it wrote once they pass ``max_bytes``, and, at the first request that
    reads a newer generation, the folders of the older ones (another worker may still write one
    there: its next request reads the newer count, and deletes it).
    """

    def __init__(self, folder: Path, max_bytes: int, max_age: float) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._written: deque[tuple[Path, int]] = deque()
        self._bytes = 0

    def _path(self, count: int, key: tuple[Any, ...]) -> Path:
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
        return self.folder / str(count) / digest

    def _turn(self, count: int) -> bool:
        """Move to generation ``count``; False when it is older than the one already seen."""
        with self._lock:
            if self._generation is not None and count <= self._generation:
                return count == self._generation
            self._generation = count
            self._written.clear()
            self._bytes = 0
        try:
            with os.scandir(self.folder) as entries:
                older = [entry.path for entry in entries if entry.name.isdigit() and int(entry.name) < count]
        except OSError:
            return True
        for folder in older:
            shutil.rmtree(folder, ignore_errors=True)
        return True

    def get(self, count: int, key: tuple[Any, ...]) -> Page | None:
        """The page some worker shared for ``key`` under ``count``, if it is there and still fresh."""
        if not self._turn(count):
            return None
        try:
            with open(self._path(count, key), "rb") as kept:
                head, body = kept.readline(), kept.read()
            meta = json.loads(head)
        except (OSError, ValueError):
            return None
        age = time.time() - meta["kept"]
        if meta["key"] != list(key) or not 0 <= age <= self.max_age:
            return None
        headers = tuple((name, value) for name, value in meta["headers"])
        return Page(meta["status"], headers, body, time.monotonic() - age)

    def put(self, count: int, key: tuple[Any, ...], page: Page) -> None:
        """Share ``page`` under ``count``; a page that cannot be written is simply not shared."""
        if not self._turn(count):
            return
        path = self._path(count, key)
        kept = time.time() - (time.monotonic() - page.kept_at)
        head = json.dumps({"key": list(key), "status": page.status, "headers": page.headers, "kept": kept})
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as out:
                out.write(head.encode() + b"\n" + page.body)
            os.replace(temporary, path)
        except OSError:
            temporary.unlink(missing_ok=True)
            return
        size = len(page.body)
        with self._lock:
            if self._generation != count:
                return
            self._written.append((path, size))
            self._bytes += size
            while self._bytes > self.max_bytes and self._written:
                oldest, oldest_size = self._written.popleft()
                self._bytes -= oldest_size
                oldest.unlink(missing_ok=True)


def _anonymous_request() -> bool:
    """Whether nothing about this request can tell one visitor from another (but its address)."""
    return (
        request.method in ("GET", "HEAD")
        and "Authorization" not in request.headers
        and not session
        and current_user.is_anonymous
    )


def _indexes_caught_up() -> bool:
    """Whether every tier's index has applied the whole outbox, as the database says now."""
    try:
        return not search.indexes().behind(db_session)
    except OSError:
        return False


def uncacheable() -> None:
    """Keep this request's page out of the cache (a view that knows its answer is not the usual one)."""
    g.page_cache_skip = True


def _cached(endpoint: str, view: Callable[..., Any], needs_index: bool) -> Callable[..., Any]:
    @functools.wraps(view)
    def serve(*args: Any, **kwargs: Any) -> Any:
        cache: PageCache | None = current_app.extensions.get("registry.pagecache")
        if cache is None or not _anonymous_request():
            return view(*args, **kwargs)
        # Read before the page reads anything: what it then reads is at least this new.
        count = generation.current(db_session)
        if count is None:
            return view(*args, **kwargs)
        key = (endpoint, request.host, request.full_path, current_language())
        page = cache.get(count, key)
        if page is not None:
            response = Response(page.body, status=page.status, headers=list(page.headers))
            g.page_cache = "hit"
            return response
        if needs_index and not _indexes_caught_up():
            return view(*args, **kwargs)
        response = make_response(view(*args, **kwargs))
        html = response.mimetype == "text/html" and not response.direct_passthrough
        if response.status_code == 200 and html:
            headers = tuple((name, value) for name, value in response.headers if name in _KEPT_HEADERS)
            page = Page(200, headers, response.get_data(), time.monotonic())
            g.page_cache_candidate = (cache, count, key, page)
        return response

    return serve


def init_app(app: Flask) -> None:
    """Keep the pages of ``CACHED`` for anonymous visitors (call after the blueprints, before the
    rate limits, so that the limits count every request, kept page or not)."""
    megabytes = float(app.config.get("PAGE_CACHE_MB", 0))
    if megabytes <= 0:
        return
    max_bytes, max_age = int(megabytes * 1024 * 1024), float(app.config["PAGE_CACHE_SECONDS"])
    folder = Path(app.config["PAGE_CACHE_DIR"])
    shutil.rmtree(folder, ignore_errors=True)
    shared = SharedPages(folder, max_bytes, max_age)
    app.extensions["registry.pagecache"] = PageCache(max_bytes, max_age, shared)
    for endpoint, needs_index in CACHED.items():
        view = app.view_functions.get(endpoint)
        if view is not None:
            app.view_functions[endpoint] = _cached(endpoint, view, needs_index)

    request_finished.connect(_keep, app)


def _keep(_app: Flask, response: Response, **_extra: Any) -> None:
    """Keep the page once the response is final: after every after-request function and the
    session's own, so that a cookie any of them set keeps the page out."""
    candidate = g.pop("page_cache_candidate", None)
    if candidate is None or g.get("page_cache_skip"):
        return
    if response.status_code != 200 or "Set-Cookie" in response.headers or session.modified or session:
        return
    cache, count, key, page = candidate
    cache.put(count, key, page)
