"""Rate limits (issue 11, item 3): a 429 with a clear page after the limit, counted in the database so that
every worker shares the count; the sign-in owner's own browser is never kept out by someone else.

The counting SQL runs on both backends (the two-worker search and the storage tests); the other limits
count through the same statement, so they run on SQLite only."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from flask import Flask, url_for
from sqlalchemy import func, select

from registry import clock, ratelimit
from registry.config import ConfigError, load_config
from registry.db import session
from registry.models import RateLimitCounter, SignInThrottle

from .conftest import csrf_token, dispose, fresh_database, load_reference, login, make_app
from .factories import PASSWORD, make_user
from .test_submit import pdf_bytes, protocol_form


@pytest.fixture
def workers(request, backend, templates, tmp_path):  # type: ignore[no-untyped-def]
    """Make two applications on one database, as two gunicorn workers are: ``workers(**config)``."""
    made: list[Flask] = []

    def factory(**config: str) -> tuple[Flask, Flask]:
        url = fresh_database(request, backend, templates, tmp_path / "db")
        pair = (make_app(url, tmp_path / "home-1", **config), make_app(url, tmp_path / "home-2", **config))
        with pair[0].app_context():
            load_reference()
            make_user("party", "ZA")
            make_user("reader")
        made.extend(pair)
        return pair

    yield factory
    for application in made:
        dispose(application)


def _refused(response) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``response`` is the rate limit's 429, with a Retry-After of at most its window."""
    if response.status_code != 429:
        return False
    assert 1 <= int(response.headers["Retry-After"]) <= 3600
    return True


def test_searches_are_counted_across_workers_and_refused_with_a_translated_page(workers):
    """The limit is one count for both workers: the 4th search of 3 a minute is refused, in the viewer's
    language (and in JSON when JSON is asked for); browsing has a count of its own."""
    first, second = workers(RATE_LIMIT_SEARCH="3/minute")
    clients = [first.test_client(), second.test_client()]
    for n in range(3):
        assert clients[n % 2].get("/search?q=parrot").status_code == 200, n
    page = clients[1].get("/search?q=parrot&lang=fr")
    assert _refused(page)
    body = page.get_data(as_text=True)
    assert '<html lang="fr"' in body and "Veuillez réessayer dans" in body
    assert "You have sent too many requests in a short time." in body or "requêtes" in body
    answer = clients[0].get("/search?q=parrot", headers={"Accept": "application/json"})
    assert _refused(answer) and answer.get_json()["error"]
    # Only the searches are refused; the limits are per address.
    assert clients[0].get("/records").status_code == 200
    other = clients[0].get("/search?q=parrot", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sign_ins_are_limited_per_account_without_keeping_its_owner_out(workers):
    """An account tried too often is refused (the attempt is not even counted by the sign-in throttle),
    while its owner's browser, which signed in before, still signs in; other accounts are not held up."""
    app, _ = workers(RATE_LIMIT_LOGIN_ACCOUNT="3/minute", SIGN_IN_ACCOUNT_FAILURES=50)
    owner = app.test_client()
    assert login(owner, "party-za@test.example", PASSWORD).status_code == 302
    attacker = app.test_client()
    address = {"REMOTE_ADDR": "198.51.100.9"}
    token = csrf_token(attacker)
    attempt = {"email": "party-za@test.example", "password": "wrong password", "csrf_token": token}
    # The owner's first sign-in counted on the account (the browser was not known yet): two more.
    for _ in range(2):
        assert attacker.post("/login", data=attempt, environ_base=address).status_code == 400
    assert _refused(attacker.post("/login", data=attempt, environ_base=address))
    with app.app_context():
        # The refused attempt wrote nothing but its count: the throttle saw two failures.
        assert session.scalar(select(func.max(SignInThrottle.failures))) == 2
    other = {**attempt, "email": "reader-x@test.example"}
    assert attacker.post("/login", data=other, environ_base=address).status_code == 400
    assert login(owner, "party-za@test.example", PASSWORD).status_code == 302


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sign_ins_are_limited_per_address(workers):
    """One address trying many accounts is refused after its limit; another address is not."""
    app, other_worker = workers(RATE_LIMIT_LOGIN="3/minute")
    client = app.test_client()
    token = csrf_token(client)
    for n in range(3):
        attempt = {"email": f"someone-{n}@test.example", "password": "guess", "csrf_token": token}
        assert client.post("/login", data=attempt).status_code == 400
    attempt = {"email": "reader-x@test.example", "password": PASSWORD, "csrf_token": token}
    assert _refused(client.post("/login", data=attempt))
    elsewhere = other_worker.test_client()
    attempt["csrf_token"] = csrf_token(elsewhere)
    answer = elsewhere.post("/login", data=attempt, environ_base={"REMOTE_ADDR": "203.0.113.5"})
    assert answer.status_code == 302


def _post_files(client, token: str, tmp_path, files: int):  # type: ignore[no-untyped-def]
    form = protocol_form(token, title="")  # the form comes back (422) with its uploads kept
    for slot in range(files):
        form[f"upload.{slot}"] = (io.BytesIO(pdf_bytes(tmp_path)), f"protocole-{slot}.pdf")
    return client.post("/submit/new/protocol", data=form, content_type="multipart/form-data")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_uploads_are_limited_but_saving_a_form_without_files_is_not(workers, tmp_path):
    """Form posts that carry files count, on the new and edit forms alike; a refused one stores nothing."""
    app, _ = workers(RATE_LIMIT_UPLOAD="2/hour")
    client = app.test_client()
    login(client, "party-za@test.example", PASSWORD)
    token = csrf_token(client, "/submit/new/protocol")
    for _ in range(2):
        assert _post_files(client, token, tmp_path, files=1).status_code == 422
    staged = sorted((tmp_path / "home-1" / "files").rglob("*"))
    assert _refused(_post_files(client, token, tmp_path, files=3))
    assert sorted((tmp_path / "home-1" / "files").rglob("*")) == staged
    assert _post_files(client, token, tmp_path, files=0).status_code == 422


def _limited_post_endpoints(app: Flask) -> list[str]:
    """The endpoints answering POST whose every POST is counted (uploads count only with files)."""
    return sorted(
        endpoint
        for endpoint, rules in ratelimit.LIMITS.items()
        if endpoint in app.view_functions
        and all(r.methods == ("POST",) and r.setting != "RATE_LIMIT_UPLOAD" for r in rules)
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_limited_form_is_refused_after_its_limit(workers):
    """Sign-in, its second factor, password reset and access requests: the 3rd post of 2 a minute is
    refused, however wrong the form is."""
    settings = {rule.setting: "2/minute" for rules in ratelimit.LIMITS.values() for rule in rules}
    app, _ = workers(**settings)
    endpoints = _limited_post_endpoints(app)
    assert {"auth.login", "auth.totp", "account.reset_request", "access.request"} <= set(endpoints)
    for n, endpoint in enumerate(endpoints):
        with app.test_request_context():
            url = url_for(endpoint)
        client = app.test_client()
        # An address each: the second factor's codes share the sign-in's count.
        client.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
        token = csrf_token(client)  # the session's token, good for every form
        answers = [client.post(url, data={"csrf_token": token}).status_code for _ in range(2)]
        assert 429 not in answers, endpoint
        assert _refused(client.post(url, data={"csrf_token": token})), endpoint


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_limited_endpoint_is_limited(app):
    """Every endpoint ``LIMITS`` names and the app has is wrapped by the limiter (``ratelimit.init_app``
    runs after every blueprint is registered); the export's setting waits for its endpoint."""
    limiter = app.extensions["registry.limiter"]
    present = [endpoint for endpoint in ratelimit.LIMITS if endpoint in app.view_functions]
    assert {"auth.login", "submit.new", "submit.edit", "public.search_page", "public.browse"} <= set(present)
    for endpoint in present:
        assert getattr(app.view_functions[endpoint], "__wrapper-limiter-instance", None) == limiter, endpoint
    assert app.config["RATE_LIMIT_EXPORT"]


# The storage ------------------------------------------------------------------------------------------


def test_a_window_starts_again_when_it_is_over_and_old_windows_are_pruned(app, monkeypatch):
    """A key counts within its window, starts again at 1 after it; windows that are over are deleted
    as windows begin, a batch at a time."""
    now = dt.datetime(2026, 12, 3, 12, 0, 0)
    monkeypatch.setattr(clock, "utcnow", lambda: now)
    with app.test_request_context():
        storage = app.extensions["registry.limiter"].storage
        assert [storage.incr("a", 60) for _ in range(3)] == [1, 2, 3]
        assert storage.get("a") == 3
        assert storage.get_expiry("a") == (now + dt.timedelta(seconds=60)).replace(tzinfo=dt.UTC).timestamp()
        for n in range(ratelimit.PRUNE_BATCH + 5):
            storage.incr(f"gone-{n}", 10)
        now += dt.timedelta(seconds=61)
        assert storage.get("a") == 0
        assert storage.incr("a", 60) == 1
        with app.app_context():
            left = session.scalar(select(func.count()).select_from(RateLimitCounter))
        assert left == 1 + 5
        storage.incr("b", 60, amount=2)
        assert storage.get("b") == 2
        storage.clear("b")
        assert storage.get("b") == 0 and storage.check()
        assert storage.incr("x" * 400, 60) == 1 and storage.get("x" * 400) == 1


def test_concurrent_requests_never_lose_a_count(app):
    """Four threads, each with its own connection, counting one key: every request is counted."""
    errors: list[BaseException] = []

    def count() -> None:
        try:
            with app.test_request_context():
                storage = app.extensions["registry.limiter"].storage
                for _ in range(25):
                    storage.incr("shared", 60)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with app.test_request_context():
        assert app.extensions["registry.limiter"].storage.get("shared") == 100


def test_rate_limits_are_read_from_the_environment_and_checked(monkeypatch, tmp_path):
    """Each limit can be set by the environment; a limit that is not one stops the app from starting."""
    monkeypatch.setenv("RATE_LIMIT_SEARCH", "5/second;100/hour")
    config = load_config({"TESTING": True, "REGISTRY_HOME": str(tmp_path)})
    assert config["RATE_LIMIT_SEARCH"] == "5/second;100/hour"
    assert config["RATE_LIMIT_LOGIN"] == "30/minute;300/hour"
    monkeypatch.setenv("RATE_LIMIT_SEARCH", "lots")
    with pytest.raises(ConfigError, match="RATE_LIMIT_SEARCH"):
        load_config({"TESTING": True, "REGISTRY_HOME": str(tmp_path)})
