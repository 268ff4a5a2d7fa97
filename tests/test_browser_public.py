"""The public in a real browser: search from the home page, open a record, read it in French, sign in.

Runs in Debian's Chromium, with and without JavaScript; nothing may come from another host.
"""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from .browser import assert_clean, open_page, sign_in, watch
from .factories import make_record, make_user

PANGOLIN = "Quarantine protocol for seized pangolins"
TORTOISE = "Rescue centre network for tortoises"


@pytest.fixture(scope="module", autouse=True)
def published(live_app: Flask) -> None:
    """Two published public records: one that the search finds, one that it must not."""
    with live_app.app_context():
        make_record(title=PANGOLIN, summary="Holding confiscated pangolins on arrival.")
        make_record(
            type="network",
            title=TORTOISE,
            summary="Rescue centres that take in seized tortoises.",
            details={"coordinator": "Network office"},
        )


def search_and_open(page: Page, live_server: str) -> None:
    """From the home page, search for pangolins, see the one hit and open it."""
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Resources for managing seized and confiscated live animals")
    page.locator("#home-q").fill("pangolins")
    page.locator("#home-q").press("Enter")
    expect(page).to_have_url(f"{live_server}/search?q=pangolins")
    expect(page.locator(".results .count")).to_have_text("1 result")
    hit = page.locator(".hits").get_by_role("link", name=PANGOLIN)
    expect(hit).to_be_visible()
    expect(page.get_by_text(TORTOISE)).to_have_count(0)
    hit.click()
    expect(page.locator("h1")).to_have_text(PANGOLIN)


def test_search_open_and_switch_to_french(page: Page, live_server: str) -> None:
    traffic = watch(page)
    search_and_open(page, live_server)
    record_url = page.url

    page.locator("ul.langs").get_by_role("link", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page).to_have_url(f"{record_url}?lang=fr")
    expect(page.locator("h1")).to_have_text(PANGOLIN)
    expect(page.locator("nav ul.nav")).to_contain_text("Rechercher")
    expect(page.get_by_role("link", name="Se connecter")).to_be_visible()

    # The choice is remembered in a cookie: the next page is French without ?lang=.
    page.locator("nav ul.nav").get_by_role("link", name="Rechercher").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rechercher")
    assert_clean(traffic, live_server)


def test_search_without_javascript(browser: Browser, live_server: str) -> None:
    with open_page(browser, live_server, java_script_enabled=False) as page:
        traffic = watch(page)
        search_and_open(page, live_server)
        assert_clean(traffic, live_server)


def test_sign_in_and_out(page: Page, live_app: Flask, live_server: str) -> None:
    with live_app.app_context():
        make_user("reader", email="reader-browser@test.example")
    traffic = watch(page)
    sign_in(page, "reader-browser@test.example")
    expect(page.locator("header .who")).to_contain_text("Reader")
    page.locator("form[action$='/logout'] button[type=submit]").click()
    expect(page.locator("header").get_by_role("link", name="Sign in")).to_be_visible()
    assert_clean(traffic, live_server)
