"""The CENcomm access-request journey in a real browser.

A customs officer, on a 360-pixel phone, asks for access from the header's link, confirms the
address from the e-mail (read from the outbox folder the app writes), the Secretariat accepts the
request as ``enforcement`` with an end date, the officer chooses a password through the one-time link, sets
up a TOTP second factor and reads a confidential agreement. Once the end date has passed (the
clock moved: ``registry.clock.utcnow``, which the live server's thread calls too) the same
browser session gets 404 for that agreement.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from registry import clock, mail

from .browser import assert_clean, open_page, sign_in, watch
from .factories import make_record, make_user

OFFICER = "m.otieno@kra.example"
PASSWORD = "seized parrots need quick homes 42"
# The officer uses a small phone.
PHONE = {"width": 360, "height": 740}
AGREEMENT = "Placement agreement for confiscated grey parrots zorblaxian"


def last_link(app: Flask, to: str, path: str) -> str:
    """The path of the newest link to ``path`` in the outbox messages to ``to``."""
    with app.app_context():
        for message in mail.outbox():
            match = re.search(rf"https?://\S+{re.escape(path)}\S+", message.body)
            if message.to == to and match:
                return urlsplit(match.group(0)).path
    raise AssertionError(f"no message to {to} with a link to {path}")


def request_access(page: Page) -> None:
    """The officer finds the form from the header, fills it in and is asked to check the mailbox."""
    page.goto("/")
    # The header's new link fits a 360-pixel phone: nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("header.site").get_by_role("link", name="Request access").click()
    page.get_by_label("Country (CITES Party)").select_option(label="Kenya")
    page.get_by_label("Given name").fill("Mercy")
    page.get_by_label("Family name").fill("Otieno")
    page.get_by_label("Official e-mail address").fill(OFFICER)
    page.get_by_label("Telephone").fill("+254 20 281 7000")
    page.locator("#organisation").fill("Kenya Revenue Authority, Customs")
    page.get_by_label("Type of organisation").select_option("customs")
    page.get_by_label("Function").fill("Customs officer, JKIA cargo")
    page.get_by_label("Access asked for").select_option("enforcement")
    page.get_by_label("Why you need access").fill("Live birds are seized at the airport every month.")
    page.get_by_role("button", name="Send the request").click()
    # Without consent the form comes back with a summary, keeping what was typed.
    expect(page.locator(".error-summary")).to_contain_text("Consent")
    expect(page.get_by_label("Family name")).to_have_value("Otieno")
    page.locator("#consent").check()
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator("h1")).to_have_text("Check your e-mail")


def accept_as_enforcement(page: Page, until: dt.date) -> None:
    """The Secretariat opens the request from its desk and accepts it for enforcement until ``until``."""
    sign_in(page, "secretariat-x@test.example")
    page.goto("/admin/")
    page.locator(".desk-nav").get_by_role("link", name="Access requests").click()
    page.locator("table.data").get_by_role("link", name="Mercy Otieno").click()
    expect(page.locator("dl.facts")).to_contain_text("Kenya Revenue Authority, Customs")
    page.locator("#accept-role").select_option("enforcement")
    page.locator("#accept-expires").fill(until.isoformat())
    page.get_by_role("button", name="Accept and invite").click()
    expect(page.locator(".flash")).to_contain_text(OFFICER)


def choose_password_and_second_factor(page: Page, link: str) -> None:
    """The officer opens the invitation, chooses a password, signs in and sets up TOTP on /account."""
    page.goto(link)
    page.locator("#new_password").fill(PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page).to_have_url(re.compile("/login"))
    sign_in(page, OFFICER, PASSWORD)
    page.goto("/account")
    expect(page.locator("main")).to_contain_text("Enforcement officer")
    page.get_by_role("link", name="Set up a second factor").click()
    # The key is shown for typing into an authenticator app, in groups of four.
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn the second factor on").click()
    expect(page.locator(".flash")).to_contain_text("Your second factor is on")


def test_an_officer_asks_for_access_and_loses_it_when_it_ends(
    browser: Browser, live_app: Flask, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_app.config.update(MAIL_SERVER=None)
    with live_app.app_context():
        make_user("secretariat")
        agreement_id = make_record(
            type="agreement", title=AGREEMENT, confidentiality={"level": "confidential"}
        ).id
    until = clock.utcnow().date() + dt.timedelta(days=30)

    with (
        open_page(browser, live_server, viewport=PHONE) as officer,
        open_page(browser, live_server) as desk,
    ):
        traffic = watch(officer)
        request_access(officer)
        officer.goto(last_link(live_app, OFFICER, "/access-request/verify/"))
        expect(officer.locator("h1")).to_have_text("Address confirmed")

        accept_as_enforcement(desk, until)
        choose_password_and_second_factor(officer, last_link(live_app, OFFICER, "/password/"))

        officer.goto(f"/records/{agreement_id}")
        expect(officer.locator("h1")).to_have_text(AGREEMENT)

        # The access has ended: the same session now sees what the public sees.
        ended = dt.datetime.combine(until, dt.time()) + dt.timedelta(minutes=1)
        monkeypatch.setattr(clock, "utcnow", lambda: ended)
        response = officer.goto(f"/records/{agreement_id}")
        assert response is not None and response.status == 404
        assert AGREEMENT not in officer.content()
        # The browser logs the two refusals the journey meets: the form sent without consent (422)
        # and the agreement once access has ended (404). Nothing else may fail.
        expected = (
            f"422 (UNPROCESSABLE ENTITY) [{live_server}/access-request]",
            f"404 (NOT FOUND) [{live_server}/records/",
        )
        assert [e for e in traffic.console_errors if not any(x in e for x in expected)] == []
        assert len(traffic.console_errors) == 2
        traffic.console_errors.clear()
        assert_clean(traffic, live_server)
