"""Canary tests: markers planted in every confidential place never reach a viewer who may not see them.

As anonymous, as a reader and as a Party user of another Party, the test walks every page
reachable from ``/`` and every route of ``app.url_map`` (with every record, file and Party
id filled in), and checks bodies and headers. Hidden records and files answer 404 with
exactly the body of a missing one.
"""

from __future__ import annotations

import re
from collections import deque
from html import unescape
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from sqlalchemy import select

from registry.db import commit, session
from registry.models import File, Record

from .canary import MARKERS_HIDDEN_FROM, load_canaries
from .conftest import (
    BACKENDS,
    dispose,
    fresh_database,
    load_reference,
    login,
    make_app,
    without_csrf,
)
from .factories import PASSWORD, make_user

HREF = re.compile(r'(?:href|action|src)="([^"]+)"')
PARTY_PAGE = re.compile(r"^/parties/[^/]+$")


def _same_page(response) -> str:
    # The sign-out form's CSRF token is signed with a timestamp: the only part of a page that may differ.
    return without_csrf(response.get_data(as_text=True))


MAX_PAGES = 2500


def _plant(app) -> dict:
    """The demo data (when present) plus the canaries, and a user per viewer role: their ids."""
    import seed

    with app.app_context():
        if (seed.SEED_DIR / "demo.json").exists():
            from .factories import import_payload

            import_payload(seed.read_json("demo.json")["records"])
        ids = load_canaries()
        ids["reader"] = make_user("reader").email
        ids["party_other"] = make_user("party", "FR").email
        ids["records"] = list(session.scalars(select(Record.id)))
        ids["files"] = list(session.scalars(select(File.id)))
    return ids


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request, templates, tmp_path_factory):
    """One planted registry per backend for the tests that only read it (planting costs seconds)."""
    folder = tmp_path_factory.mktemp("canary")
    app = make_app(fresh_database(request, request.param, templates, folder), folder / "home")
    with app.app_context():
        load_reference()
        commit()
    yield app, _plant(app)
    dispose(app)


@pytest.fixture
def planted(app):
    """A planted registry of the test's own, for a test that changes it."""
    return _plant(app)


def _client(app, role, planted):
    client = app.test_client()
    if role != "anonymous":
        assert login(client, planted[role], PASSWORD).status_code == 302
    return client


def _check(response, url, markers):
    body = (
        response.get_data(as_text=True) if response.mimetype.startswith(("text/", "application/json")) else ""
    )
    headers = " ".join(f"{k}: {v}" for k, v in response.headers.items())
    for marker in markers:
        assert marker.lower() not in body.lower(), f"{marker} leaked in the body of {url}"
        assert marker.lower() not in headers.lower(), f"{marker} leaked in the headers of {url}"
    return body


def _crawl(client, markers):
    """Every page reachable from ``/``; of a page's query-string variants, those that bring a new
    parameter value (every facet, filter, sort, language and page link), not every combination."""
    seen: set[str] = set()
    pairs: set[tuple[str, str, str]] = set()
    queue = deque(["/"])
    while queue and len(seen) < MAX_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        with client.get(url) as response:
            assert response.status_code < 500, url
            body = _check(response, url, markers)
        for link in HREF.findall(body):
            target = urljoin(url, unescape(link))
            parts = urlsplit(target)
            if parts.netloc or not parts.path.startswith("/") or parts.path.startswith("/logout"):
                continue
            query = parse_qsl(parts.query, keep_blank_values=True)
            # Every page links to the sign-in page with itself as ``next``: one of those is enough.
            # The 185 Party pages are one page each, but one set of their variants (the Party
            # page's own listing is checked for every Party, and by id in the route walk).
            where = PARTY_PAGE.sub("/parties/*", parts.path)
            new = {(where, key, "" if key == "next" else value) for key, value in query} - pairs
            if parts.query and not new:
                continue
            pairs.update(new)
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


def _route_urls(app, planted):
    values = {
        "record_id": planted["records"] + ["rzzzzzzzzzzzz"],
        "file_id": planted["files"] + ["fzzzzzzzzzzzz"],
        "iso": ["ZA", "FR", "MX", "EU", "ZZ"],
        "filename": ["style.css"],
        "record_type": ["protocol", "agreement", "nonsense"],
        "call_id": ["1", "999"],
        "token": ["not-a-token"],
        "request_id": ["1", "999"],
    }
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        if not rule.arguments:
            urls.append(rule.rule)
            continue
        (argument,) = rule.arguments
        for value in values[argument]:
            urls.append(rule.rule.replace(f"<{argument}>", value).replace(f"<path:{argument}>", value))
    return urls


@pytest.mark.parametrize("role", ["anonymous", "party_other"])
def test_markers_never_reach_viewers_who_may_not_see_them(shared, role):
    """Crawl and walk every route as ``role``; no marker it may not see reaches it."""
    _crawl_and_walk(shared, role)


# The reader is crawled on SQLite only: it differs from the anonymous viewer by its tier alone, the
# same SQL with another value, which test_permissions checks for every role on both backends.
@pytest.mark.parametrize("shared", ["sqlite"], indirect=True)
def test_markers_never_reach_a_reader(shared):
    """Crawl and walk every route as a reader; no marker above the registered tier reaches it."""
    _crawl_and_walk(shared, "reader")


def _crawl_and_walk(shared, role):
    app, planted = shared
    markers = MARKERS_HIDDEN_FROM[role]
    client = _client(app, role, planted)
    crawled = _crawl(client, markers)
    assert len(crawled) > 50
    for number, url in enumerate(_route_urls(app, planted)):
        # Each URL once, in the three languages in turn: every route meets all three over its many
        # ids, and the crawl has followed every language link of every page already.
        language = ("en", "fr", "es")[number % 3]
        variant = f"{url}?lang={language}"
        with client.get(variant) as response:
            assert response.status_code < 500, variant
            _check(response, variant, markers)
    for filters in (
        "language=es",
        "language=fr",
        "type=agreement",
        "party=ZA",
        "region=africa",
        "taxon=Psittacidae",
    ):
        with client.get(f"/records?{filters}") as response:
            _check(response, filters, markers)


@pytest.mark.parametrize("role", ["anonymous", "reader", "party_other"])
def test_hidden_answers_exactly_like_missing(shared, role):
    app, planted = shared
    client = _client(app, role, planted)
    missing_record = client.get("/records/rzzzzzzzzzzzz")
    missing_file = client.get("/files/fzzzzzzzzzzzz")
    assert missing_record.status_code == missing_file.status_code == 404
    hidden_records = hidden_files = 0
    with app.app_context():
        records = session.scalars(select(Record)).all()
        titles = {r.id: r.title for r in records}
    for record_id in planted["records"]:
        response = client.get(f"/records/{record_id}")
        if response.status_code == 404:
            hidden_records += 1
            assert _same_page(response) == _same_page(missing_record)
        else:
            assert response.status_code == 200, titles[record_id]
    for file_id in planted["files"]:
        with client.get(f"/files/{file_id}") as response:
            if response.status_code == 404:
                hidden_files += 1
                assert _same_page(response) == _same_page(missing_file)
                assert dict(response.headers) == dict(missing_file.headers)
            else:
                assert response.status_code == 200
    assert hidden_records >= 4 and hidden_files >= 3


def test_language_filter_ignores_hidden_files(shared):
    app, planted = shared
    client = app.test_client()
    page = client.get("/records?language=es").get_data(as_text=True)
    assert planted["probe"] not in page
    with app.app_context():
        enforcement = make_user("enforcement").email
    officer = app.test_client()
    login(officer, enforcement, PASSWORD)
    assert planted["probe"] in officer.get("/records?language=es").get_data(as_text=True)


def test_counts_only_count_what_the_viewer_sees(shared):
    app, planted = shared
    with app.app_context():
        public = session.scalars(
            select(Record).where(Record.status == "published", Record.tier == "public")
        ).all()
        expected_agreements = sum(1 for r in public if r.type == "agreement")
    home = app.test_client().get("/").get_data(as_text=True)
    assert f"{len(public)} resources." in home
    browse = app.test_client().get("/records?type=agreement").get_data(as_text=True)
    assert f"{expected_agreements} resource" in browse


def test_emails_carry_no_marker_to_anyone_who_may_not_see_it(app, planted):
    """Every workflow e-mail about the canary records, and a call's reminders, read as their recipients."""
    import datetime as dt

    from registry import mail
    from registry.db import commit
    from registry.models import Call, User
    from registry.services import notices
    from registry.services.records import review

    with app.app_context():
        secretariat = make_user("secretariat")
        own = make_user("party", "ZA")
        canaries = list(session.scalars(select(Record).where(Record.party_iso == "ZA")))
        assert canaries
        for record in canaries:
            record.status, record.revision_status = "submitted", None
            commit()
            review.return_to_party(secretariat, record, f"Please check {record.title}")
            commit()
            review.submit(own, record)
            commit()
            review.publish(secretariat, record, app.config["FILES_DIR"])
            commit()
        call = Call(
            notification="2021/008",
            title_en="Seized live animals",
            title_fr="Animaux vivants saisis",
            title_es="Animales vivos decomisados",
            opens_on=dt.date(2021, 1, 1),
            deadline=dt.date(2021, 6, 30),
        )
        session.add(call)
        for iso in ("ZA", "FR"):
            notices.reminder(call, iso)
        commit()
        messages = mail.outbox(limit=10_000)
        users = {u.email: u for u in session.scalars(select(User))}
        received = {m.to for m in messages}
        assert {own.email, secretariat.email, planted["party_other"]} <= received
        for message in messages:
            role = {"party-fr@test.example": "party_other", "reader-x@test.example": "reader"}.get(message.to)
            if role is not None:
                for marker in MARKERS_HIDDEN_FROM[role]:
                    assert marker.lower() not in (message.subject + message.body).lower(), message.name
            else:
                assert users[message.to].role in ("secretariat", "party") and users[message.to].party_iso in (
                    None,
                    "ZA",
                )
