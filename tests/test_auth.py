"""Signing in and out: argon2, CSRF, safe ``next``, and cookies that die at logout."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from sqlalchemy import select

from registry.auth import safe_next
from registry.db import commit, session
from registry.models import AuditEvent, SignInThrottle, User
from registry.services import accounts, throttle

from .conftest import csrf_token, dispose, fresh_database, login, logout, make_app, without_csrf
from .factories import PASSWORD, make_record, make_user


@pytest.fixture
def reader(app):
    with app.app_context():
        user = make_user("reader")
        hidden = make_record(title="Registered-only protocol", confidentiality={"level": "registered"})
        return {"email": user.email, "record": hidden.id}


def test_password_is_hashed_with_argon2(app, reader):
    with app.app_context():
        user = session.query(User).filter_by(email=reader["email"]).one()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_passwords_get_rfc_9106_parameters_and_cheap_hashes_are_rehashed(app, reader):
    """Only the suite hashes cheaply (a setting refused outside testing): the standard profile gives
    argon2id at 64 MiB, three passes, and a hash made with other parameters is replaced at the next
    sign-in."""
    from argon2 import extract_parameters, profiles

    from registry.services import accounts

    with app.app_context():
        assert extract_parameters(accounts.hash_password(PASSWORD)) == profiles.CHEAPEST
        app.config["ARGON2_PROFILE"] = "RFC_9106_LOW_MEMORY"
        try:
            assert extract_parameters(accounts.hash_password(PASSWORD)) == profiles.RFC_9106_LOW_MEMORY
            user = accounts.authenticate(reader["email"], PASSWORD)
            assert user is not None
            assert extract_parameters(user.password_hash) == profiles.RFC_9106_LOW_MEMORY
        finally:
            app.config["ARGON2_PROFILE"] = "CHEAPEST"


def test_login_shows_registered_material(client, reader):
    assert client.get(f"/records/{reader['record']}").status_code == 404
    response = login(client, reader["email"], PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get(f"/records/{reader['record']}").status_code == 200


def test_wrong_password_keeps_the_email_and_says_why(client, reader):
    response = login(client, reader["email"], "not the password")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "The e-mail address or password is not correct." in page
    assert f'value="{reader["email"]}"' in page
    assert client.get(f"/records/{reader['record']}").status_code == 404


def test_unknown_email_gets_the_same_answer(client, reader):
    unknown = without_csrf(login(client, "nobody@test.example", PASSWORD).get_data(as_text=True))
    wrong = without_csrf(login(client, reader["email"], "wrong password!").get_data(as_text=True))
    assert "The e-mail address or password is not correct." in unknown
    assert unknown.replace("nobody@test.example", "") == wrong.replace(reader["email"], "")


def test_cookie_replay_after_logout_fails(app, client, reader):
    login(client, reader["email"], PASSWORD)
    stolen = client.get_cookie("session").value
    assert client.get(f"/records/{reader['record']}").status_code == 200
    assert logout(client).status_code == 302
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get(f"/records/{reader['record']}").status_code == 404
    assert "Sign out" not in replay.get("/").get_data(as_text=True)


def test_deactivated_user_loses_access_at_once(app, client, reader):
    login(client, reader["email"], PASSWORD)
    with app.app_context():
        session.query(User).filter_by(email=reader["email"]).one().active = False
        commit()
    assert client.get(f"/records/{reader['record']}").status_code == 404
    assert login(client, reader["email"], PASSWORD).status_code == 400


def test_login_without_csrf_token_is_refused(client, reader):
    response = client.post("/login", data={"email": reader["email"], "password": PASSWORD})
    assert response.status_code == 400
    assert "The form has expired" in response.get_data(as_text=True)
    assert client.get(f"/records/{reader['record']}").status_code == 404


def test_logout_without_csrf_token_is_refused(client, reader):
    login(client, reader["email"], PASSWORD)
    assert client.post("/logout").status_code == 400
    assert client.get(f"/records/{reader['record']}").status_code == 200


def test_logout_by_get_is_not_allowed(client, reader):
    login(client, reader["email"], PASSWORD)
    assert client.get("/logout").status_code == 405
    assert client.get(f"/records/{reader['record']}").status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/records\r\nLocation: https://evil.example",
    ],
)
def test_bad_next_is_ignored(client, reader, target):
    response = login(client, reader["email"], PASSWORD, next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_same_site_next_is_followed(client, reader):
    response = login(client, reader["email"], PASSWORD, next_url="/records?type=protocol")
    assert response.headers["Location"] == "/records?type=protocol"


def test_safe_next_rules():
    assert safe_next("/records/abc") == "/records/abc"
    for bad in (None, "", "records", "//x", "https://x", "/\\x", "/a\x00b"):
        assert safe_next(bad) is None


def test_login_page_has_csrf_token_and_fields(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'name="email"' in page and 'name="password"' in page and csrf_token(client)


def test_security_headers(client):
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "email",
    ["reader-x@test.example\x00", "\x00", "reader\u2028-x@test.example", "no address at all", "a@b\x07"],
)
def test_junk_in_the_email_gets_the_usual_answer(client, reader, email):
    response = login(client, email, PASSWORD)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The e-mail address or password is not correct." in page and "Traceback" not in page
    assert client.get(f"/records/{reader['record']}").status_code == 404
    # The form still works afterwards: nothing was left half done.
    assert login(client, reader["email"], PASSWORD).status_code == 302


# Sign-in throttling (issue 10, item 11) -----------------------------------------------------------


class Clock:
    """The throttle's clock, moved by hand with ``advance(seconds)`` instead of waiting."""

    def __init__(self) -> None:
        self.now = throttle.utcnow()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += dt.timedelta(seconds=seconds)


def hand_moved_clock(monkeypatch) -> Clock:  # type: ignore[no-untyped-def]
    """Make the throttle read a Clock that only moves when told to; return it."""
    moved = Clock()
    monkeypatch.setattr(throttle, "utcnow", lambda: moved.now)
    return moved


@pytest.fixture
def clock(monkeypatch) -> Clock:  # type: ignore[no-untyped-def]
    """The throttle's hand-moved clock."""
    return hand_moved_clock(monkeypatch)


def _attempt(client, email: str, password: str, **params: str):  # type: ignore[no-untyped-def]
    """One sign-in attempt through the form (CSRF token included); the response."""
    data = {"email": email, "password": password, "csrf_token": csrf_token(client)}
    return client.post("/login", data=data, query_string=params)


def _client_from(app, address: str):  # type: ignore[no-untyped-def]
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _signed_in(client, record_id: str) -> bool:
    with client.get(f"/records/{record_id}") as response:
        return response.status_code == 200


def test_wrong_passwords_make_the_account_wait(client, reader, clock):
    """Issue 10, item 11: after five wrong passwords even the right one waits (429, with when), for 1 s."""
    statuses = [_attempt(client, reader["email"], f"wrong password {n}").status_code for n in range(40)]
    assert statuses == [400] * 5 + [429] * 35
    response = _attempt(client, reader["email"], PASSWORD)
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    page = response.get_data(as_text=True)
    assert "Too many failed attempts." in page and "Please try again in 1 second." in page
    assert not _signed_in(client, reader["record"])
    clock.advance(1)
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302
    assert _signed_in(client, reader["record"])


@pytest.mark.parametrize(("lang", "unit"), [("en", "1 second"), ("fr", "1\xa0seconde"), ("es", "1 segundo")])
def test_the_wait_is_told_in_the_page_language(client, reader, clock, lang, unit):
    """Issue 10, item 11: the 429 page says how long to wait in the visitor's language."""
    for _ in range(5):
        _attempt(client, reader["email"], "wrong password")
    response = _attempt(client, reader["email"], PASSWORD, lang=lang)
    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and unit in page


def test_the_wait_doubles_up_to_a_cap_and_is_then_forgotten(client, reader, clock, app):
    """Issue 10, item 11: each further failure doubles the wait (1 s, 2 s ... ), never beyond the
    cap, so nobody can keep an account shut; after a quiet spell the failures are forgotten."""
    cap = app.config["SIGN_IN_ACCOUNT_MAX_WAIT"]
    for _ in range(5):
        assert _attempt(client, reader["email"], "wrong password").status_code == 400
    waits = []
    for _ in range(13):
        response = _attempt(client, reader["email"], "wrong password")
        assert response.status_code == 429
        waits.append(int(response.headers["Retry-After"]))
        clock.advance(waits[-1])
        assert _attempt(client, reader["email"], "wrong password").status_code == 400
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, cap, cap, cap]
    clock.advance(cap + app.config["SIGN_IN_FORGET_AFTER"])
    statuses = [_attempt(client, reader["email"], "wrong password").status_code for _ in range(6)]
    assert statuses == [400] * 5 + [429]


def test_a_waiting_attempt_checks_no_password_and_writes_nothing(app, client, reader, clock, monkeypatch):
    """Issue 10, item 11: a refused attempt costs one query: no argon2, no trail entry, no count."""
    for _ in range(5):
        _attempt(client, reader["email"], "wrong password")
    with app.app_context():
        before = (_trail(), _counters())
    checked = []
    monkeypatch.setattr(accounts, "authenticate", lambda *args: checked.append(args))
    assert _attempt(client, reader["email"], PASSWORD).status_code == 429
    assert checked == []
    with app.app_context():
        assert (_trail(), _counters()) == before


def test_a_successful_sign_in_starts_the_account_afresh(client, reader, clock):
    """Issue 10, item 11: failures before a sign-in no longer count once it succeeded."""
    for _ in range(4):
        assert _attempt(client, reader["email"], "wrong password").status_code == 400
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302
    logout(client)
    for _ in range(4):
        assert _attempt(client, reader["email"], "wrong password").status_code == 400
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302


def test_empty_passwords_are_counted_like_wrong_ones(client, reader, clock):
    """Issue 10, items 11 and 12: a form without a password is a failed attempt, and waits too."""
    for _ in range(5):
        assert _attempt(client, reader["email"], "").status_code == 400
    assert _attempt(client, reader["email"], PASSWORD).status_code == 429


def test_one_address_trying_many_accounts_waits(app, reader, clock):
    """Issue 10, item 11: twenty failures from one address, on as many accounts, make the address
    wait, whatever account it tries next; other addresses are not held up."""
    attacker = _client_from(app, "198.51.100.7")
    for n in range(20):
        assert _attempt(attacker, f"guess{n}@test.example", "").status_code == 400
    assert _attempt(attacker, reader["email"], PASSWORD).status_code == 429
    neighbour = _client_from(app, "198.51.100.8")
    assert _attempt(neighbour, reader["email"], PASSWORD).status_code == 302


def test_the_owners_browser_signs_in_while_the_account_is_attacked(app, client, reader, clock):
    """Issue 10, item 11: an attacker who keeps failing on an account makes it wait, but not for the
    browser its owner signed in with before; that browser's own failures are counted on their own,
    and another account's device cookie is no pass."""
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302
    logout(client)
    attacker = _client_from(app, "203.0.113.9")
    with app.app_context():
        make_user("reader", email="attacker@test.example")
    assert _attempt(attacker, "attacker@test.example", PASSWORD).status_code == 302
    logout(attacker)
    for _ in range(5):
        assert _attempt(attacker, reader["email"], "wrong password").status_code == 400
    assert _attempt(attacker, reader["email"], "wrong password").status_code == 429
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302
    logout(client)
    for _ in range(5):
        assert _attempt(client, reader["email"], "fat fingers").status_code == 400
    assert _attempt(client, reader["email"], PASSWORD).status_code == 429


def test_every_worker_counts_the_same_attempts(app, reader, clock, tmp_path):
    """Issue 10, item 11: the counts live in the database: another worker (or node, or the same one
    after a restart) on the same database refuses what this one counted."""
    for _ in range(5):
        _attempt(app.test_client(), reader["email"], "wrong password")
    other = make_app(app.config["DATABASE_URL"], tmp_path / "other-worker")
    try:
        assert _attempt(other.test_client(), reader["email"], PASSWORD).status_code == 429
    finally:
        dispose(other)


def test_concurrent_failures_are_all_counted(app):
    """Issue 10, item 11: workers counting one key at once lose no count (one atomic statement each)."""
    limit = throttle.Limit(free=10_000, max_wait=1, forget_after=600)
    key = throttle.account_key("target@test.example", limit)

    def fail_ten_times() -> None:
        with app.app_context():
            for _ in range(10):
                throttle.take([key])
                commit()

    threads = [threading.Thread(target=fail_ten_times) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        assert session.get(SignInThrottle, key.name).failures == 80


def test_an_ipv6_client_counts_as_its_network():
    """Issue 10, item 11: the addresses of one IPv6 /64 (one machine, usually) share a counter."""
    limit = throttle.Limit(free=20, max_wait=3600, forget_after=900)
    one = throttle.address_key("2001:db8:1:2::1", limit)
    assert one == throttle.address_key("2001:db8:1:2:ffff::9", limit)
    assert one != throttle.address_key("2001:db8:1:3::1", limit)
    assert throttle.address_key("::ffff:192.0.2.1", limit).name == "address:192.0.2.1"


@pytest.mark.parametrize("proxies", [0, 1])
def test_only_trusted_proxies_name_the_client(backend, templates, request, tmp_path, proxies):
    """Issue 10, item 11: behind the configured proxies the client's own address is throttled and
    audited; without them a forged X-Forwarded-For changes nothing."""
    url = fresh_database(request, backend, templates, tmp_path / "proxied")
    proxied = make_app(url, tmp_path / "proxied" / "home", TRUSTED_PROXIES=proxies)
    try:
        client = _client_from(proxied, "10.0.0.1")
        data = {"email": "someone@test.example", "password": "wrong", "csrf_token": csrf_token(client)}
        client.post("/login", data=data, headers={"X-Forwarded-For": "192.0.2.44"})
        with proxied.app_context():
            assert [e.remote_addr for e in session.scalars(select(AuditEvent))] == [
                "192.0.2.44" if proxies else "10.0.0.1"
            ]
            assert session.get(SignInThrottle, f"address:{'192.0.2.44' if proxies else '10.0.0.1'}")
    finally:
        dispose(proxied)


def _trail() -> list[tuple[str, str]]:
    return [(e.action, e.actor) for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def _counters() -> list[tuple[str, int, dt.datetime | None]]:
    rows = session.scalars(select(SignInThrottle).order_by(SignInThrottle.key))
    return [(row.key, row.failures, row.locked_until) for row in rows]


# The lifetime of a sign-in (issue 10, item 16) ---------------------------------------------------


def test_a_sign_in_ends_after_its_lifetime_however_active(app, client, reader):
    """Issue 10, item 16: a session cookie stops working SESSION_LIFETIME_HOURS after the sign-in."""
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302
    lifetime = app.config["SESSION_LIFETIME_HOURS"] * 3600
    with client.session_transaction() as cookie:
        cookie["signed_in_at"] = int(time.time()) - lifetime + 60
    assert _signed_in(client, reader["record"])
    with client.session_transaction() as cookie:
        cookie["signed_in_at"] = int(time.time()) - lifetime - 60
    page = client.get("/").get_data(as_text=True)
    assert "Your sign-in has ended. Please sign in again." in page and "Sign out" not in page
    assert not _signed_in(client, reader["record"])


def test_a_session_without_its_sign_in_time_is_ended(client, reader):
    """Issue 10, item 16: a sign-in from before the lifetime existed (no time in it) ends at once."""
    assert _attempt(client, reader["email"], PASSWORD).status_code == 302
    with client.session_transaction() as cookie:
        cookie.pop("signed_in_at", None)
    assert not _signed_in(client, reader["record"])
