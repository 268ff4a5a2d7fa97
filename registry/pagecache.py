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
worker's pages take at most ``PAGE_CACHE_MB``; 0 turns the cache off. The view's rate limit
still counts every request (the cache sits inside it), and the response headers (security,
caching, language) are added to a kept page as to a fresh one.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
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

    def __init__(self, max_bytes: int, max_age: float) -> None:
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._pages: OrderedDict[tuple[Any, ...], Page] = OrderedDict()
        self._bytes = 0

    def get(self, count: int, key: tuple[Any, ...]) -> Page | None:
        """The page kept for ``key`` under generation ``count``, if it is still fresh."""
        with self._lock:
            if self._generation is not None and count < self._generation:
                # A request that read the count just before a change: it keeps nothing of the newer pages.
                return None
            self._turn(count)
            page = self._pages.get(key)
            if page is None:
                return None
            if time.monotonic() - page.kept_at > self.max_age:
                self._drop(key)
                return None
            self._pages.move_to_end(key)
            return page

    def put(self, count: int, key: tuple[Any, ...], page: Page) -> None:
        """Keep ``page`` for ``key`` under generation ``count`` (dropped at once if that is past)."""
        size = len(page.body)
        if size > self.max_bytes // 8:
            return
        with self._lock:
            if self._generation is not None and count < self._generation:
                return
            self._turn(count)
            if key in self._pages:
                self._drop(key)
            self._pages[key] = page
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._pages)))

    def _turn(self, count: int) -> None:
        """Forget every page of another generation: none of them can be served again."""
        if count != self._generation:
            self._pages.clear()
            self._bytes = 0
            self._generation = count

    def _drop(self, key: tuple[Any, ...]) -> None:
        self._bytes -= len(self._pages.pop(key).body)


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
    app.extensions["registry.pagecache"] = PageCache(
        int(megabytes * 1024 * 1024), float(app.config["PAGE_CACHE_SECONDS"])
    )
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
