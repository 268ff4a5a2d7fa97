"""Browser-test fixtures: the app served on a loopback port and Debian's Chromium driven by Playwright.

Plain fixtures, loaded by ``tests/conftest.py`` through ``pytest_plugins``. Without Chromium at
``CHROMIUM`` the browser tests skip, unless REQUIRE_BROWSER=1 (as CI sets), where they fail.

``live_app`` (one per test module) is the Flask app behind ``live_server``: add users and records
in ``live_app.app_context()`` before the browser asks for them.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from werkzeug.serving import make_server

from registry import clock
from registry.db import commit

from .conftest import dispose, fresh_database, load_reference, make_app
from .factories import PASSWORD, TOTP_SECRET

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/lib/chromium/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def live_app(
    request: pytest.FixtureRequest, templates: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """A SQLite application with the Parties and taxa, shared by one test module."""
    folder = tmp_path_factory.mktemp("live")
    application = make_app(fresh_database(request, "sqlite", templates, folder / "db"), folder / "home")
    with application.app_context():
        load_reference()
        commit()
    yield application
    dispose(application)


@pytest.fixture(scope="module")
def live_server(live_app: Flask) -> Iterator[str]:
    """Serve ``live_app`` on 127.0.0.1, a free port, in a thread; yield the base URL (no trailing slash)."""
    server = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} not found (install the Debian packages chromium and chromium-driver)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def open_page(browser: Browser, base_url: str, **context_options: Any) -> Iterator[Page]:
    """A page in a new browser context (its own cookies) whose relative URLs start at ``base_url``.

    ``context_options`` go to ``Browser.new_context``, e.g. ``java_script_enabled=False``.
    """
    options: dict[str, Any] = {"base_url": base_url, "locale": "en-GB", **context_options}
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page (new context, English, 10 s timeouts) on ``live_server``: ``page.goto("/")`` works."""
    with open_page(browser, live_server) as fresh:
        yield fresh


@dataclass
class Traffic:
    """What a page asked for and complained about, recorded by ``watch``."""

    requests: list[str] = field(default_factory=list)
    #: "message [url of the script or resource]"
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def foreign(self, base_url: str) -> list[str]:
        """The requested URLs whose scheme, host or port is not ``base_url``'s (data: URLs are local)."""
        origin = urlsplit(base_url)[:2]
        return [url for url in self.requests if not url.startswith("data:") and urlsplit(url)[:2] != origin]


def watch(page: Page) -> Traffic:
    """Record from now on every request of ``page``, its console errors, uncaught errors and 5xx answers."""
    traffic = Traffic()
    page.on("request", lambda req: traffic.requests.append(req.url))
    page.on(
        "console",
        lambda msg: (
            traffic.console_errors.append(f"{msg.text} [{msg.location.get('url', '')}]")
            if msg.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda exc: traffic.page_errors.append(str(exc)))
    page.on(
        "response",
        lambda res: traffic.server_errors.append(f"{res.status} {res.url}") if res.status >= 500 else None,
    )
    return traffic


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the real login form (CSRF token included) and wait for the signed-in page.

    Raises AssertionError (from ``expect``) when the sign-out button does not appear.
    """
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    with page.expect_navigation():
        page.locator("main form[action$='/login'] button[type=submit]").click()
    if urlsplit(page.url).path.endswith("/login/code"):
        # A test Secretariat account's second factor (tests/factories.TOTP_SECRET): this step's code.
        page.locator("#code").fill(pyotp.TOTP(TOTP_SECRET).at(clock.utcnow().replace(tzinfo=dt.UTC)))
        page.locator("main form[action$='/login/code'] button[type=submit]").click()
    expect(page.locator("form[action$='/logout'] button[type=submit]")).to_be_visible()


def assert_clean(traffic: Traffic, live_server: str) -> None:
    """Nothing failed in the page or on the server, and every request went to the live server."""
    assert traffic.requests, "no request was recorded"
    assert traffic.foreign(live_server) == []
    assert traffic.console_errors == []
    assert traffic.page_errors == []
    assert traffic.server_errors == []
