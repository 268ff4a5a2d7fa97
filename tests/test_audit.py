"""The audit trail: what is written, who reads it, and that nobody can change it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from registry.db import commit, get_engine, rollback, session
from registry.models import AuditEvent
from registry.services import audit

from .conftest import csrf_token, login
from .factories import PASSWORD, make_record, make_user
from .test_auth import hand_moved_clock


def test_logins_and_failed_logins_are_recorded_with_their_address(app, client):
    with app.app_context():
        make_user("reader")
    assert login(client, "reader-x@test.example", "wrong password").status_code == 400
    assert login(client, "nobody@test.example", PASSWORD).status_code == 400
    assert login(client, "reader-x@test.example", PASSWORD).status_code == 302
    with app.app_context():
        events = [
            (e.action, e.actor, e.remote_addr)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]
    assert events == [
        ("login_failed", "reader-x@test.example", "127.0.0.1"),
        ("login_failed", "nobody@test.example", "127.0.0.1"),
        ("login", "reader-x@test.example", "127.0.0.1"),
    ]


def test_failed_logins_whose_form_does_not_validate_are_recorded_too(app, client):
    attempts = [
        {"email": "reader-x@test.example", "password": ""},  # no password
        {"email": "", "password": PASSWORD},  # no address
        {"email": "a" * 300 + "@test.example", "password": PASSWORD},  # too long to be an address
        {"email": "reader\x00-x@test.example", "password": PASSWORD},  # NUL: refused like any other
        {"email": "not an address", "password": PASSWORD},
    ]
    for attempt in attempts:
        response = client.post("/login", data={**attempt, "csrf_token": csrf_token(client)})
        assert response.status_code == 400
    with app.app_context():
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["login_failed"] * len(attempts)
    assert [e.actor for e in events] == [
        "reader-x@test.example",
        "",
        ("a" * 300 + "@test.example")[:254],
        "reader\ufffd-x@test.example",
        "not an address",
    ]
    assert all(e.remote_addr == "127.0.0.1" for e in events)


def test_a_party_reads_only_its_own_records_trail(app):
    with app.app_context():
        own, other = make_record(party="ZA"), make_record(party="FR")
        # Each was created and published by the import, as on the desk: two events each.
        created = session.scalar(select(func.count()).select_from(AuditEvent))
        assert created == 4
        audit.log(None, "edit", record=own)
        audit.log(None, "edit", record=other)
        audit.log(None, "login_failed", actor="someone@test.example")
        commit()
        za = make_user("party", "ZA")
        reader = make_user("reader")
        secretariat = make_user("secretariat")
        assert {e.record_id for e in audit.trail(za).events} == {own.id}
        assert audit.trail(reader).events == []
        assert audit.trail(None).events == []
        assert audit.trail(secretariat).total == created + 3


def test_the_trail_cannot_be_changed_or_deleted(app):
    with app.app_context():
        audit.log(None, "login_failed", actor="someone@test.example")
        commit()
        entry = session.scalar(select(AuditEvent))
        entry.actor = "forged@test.example"
        with pytest.raises(RuntimeError, match="append-only"):
            session.flush()
        rollback()
        session.delete(session.scalar(select(AuditEvent)))
        with pytest.raises(RuntimeError, match="append-only"):
            session.flush()
        rollback()
    # Below the application, the database refuses too.
    with app.app_context(), get_engine().connect() as connection:
        for statement in (update(AuditEvent).values(actor="forged"), delete(AuditEvent)):
            with pytest.raises(DBAPIError, match="append-only"):
                connection.execute(statement)
            connection.rollback()
        assert connection.execute(text("SELECT actor FROM audit_events")).scalar() == "someone@test.example"


def _post_empty_password(client, email: str = "reader-x@test.example"):  # type: ignore[no-untyped-def]
    return client.post("/login", data={"email": email, "password": "", "csrf_token": csrf_token(client)})


def test_a_flood_of_failed_sign_ins_writes_two_entries(app, client, monkeypatch):
    """Issue 10, item 12: two hundred empty-password posts in a row write two entries, not 200: the
    first failure, and the moment the account was made to wait; the rest are refused uncounted."""
    hand_moved_clock(monkeypatch)
    statuses = [_post_empty_password(client).status_code for _ in range(200)]
    assert statuses == [400] * 5 + [429] * 195
    with app.app_context():
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.action, e.actor, e.remote_addr) for e in events] == [
        ("login_failed", "reader-x@test.example", "127.0.0.1"),
        ("login_throttled", "reader-x@test.example", "127.0.0.1"),
    ]
    assert events[1].detail == {"scope": "account", "failures": 5, "wait_seconds": 1}


def test_repeated_failed_sign_ins_are_recorded_as_their_count_doubles(app, client, monkeypatch):
    """Issue 10, item 12: an attacker who waits out every wait still writes only at 1, 5, 10, 20, 40
    failures (and the address at 20 and 40), each entry with the count; a sign-in says how many
    failures preceded it."""
    clock = hand_moved_clock(monkeypatch)
    with app.app_context():
        make_user("reader")
    failures = 0
    while failures < 40:
        response = _post_empty_password(client)
        if response.status_code == 429:
            clock.advance(int(response.headers["Retry-After"]))
        else:
            assert response.status_code == 400
            failures += 1
    with app.app_context():
        throttled = [
            (e.detail["scope"], e.detail["failures"])
            for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "login_throttled"))
        ]
        failed = session.scalar(select(func.count()).where(AuditEvent.action == "login_failed"))
    assert failed == 1
    assert throttled == [
        ("account", 5),
        ("account", 10),
        ("account", 20),
        ("address", 20),
        ("account", 40),
        ("address", 40),
    ]
    refused = login(client, "reader-x@test.example", PASSWORD)
    assert refused.status_code == 429
    clock.advance(int(refused.headers["Retry-After"]))
    assert login(client, "reader-x@test.example", PASSWORD).status_code == 302
    with app.app_context():
        signed_in = session.scalar(select(AuditEvent).where(AuditEvent.action == "login"))
    assert signed_in.detail == {"failed_attempts": 40}


def test_the_trail_shows_bidirectional_controls_instead_of_obeying_them(app):
    """Issue 10, item 16: a sign-in as ``\\u202egro.elpmaxe@nimda`` must not read as admin@example.org
    on the desk: every direction control in an actor, a detail or an address is shown as U+FFFD."""
    with app.app_context():
        make_user("secretariat")
        record = make_record()
        audit.log(None, "login_failed", actor="\u202egro.elpmaxe@nimda")
        reason = "see \u2066the\u2069 file \u200f\u061c"
        audit.log(None, "withdraw", record=record, reason=reason, **{"\u202dkey": 1})
        commit()
    client = app.test_client()
    assert login(client, "secretariat-x@test.example", PASSWORD).status_code == 302
    page = client.get("/admin/audit").get_data(as_text=True)
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", page)
    assert "\ufffdgro.elpmaxe@nimda" in page and "see \ufffdthe\ufffd file \ufffd\ufffd" in page
    assert "\ufffdkey: 1" in page


def test_only_the_secretariat_reads_who_downloaded_a_partys_files_and_the_party_reads_how_many(app):
    """Issue 10, item 5: a Party's trail leaves out the downloads of its files, which name who read
    them (``see_downloaders`` is the Secretariat's alone); ``download_counts`` gives the record's
    keepers the numbers by role and Party, and nobody else anything."""
    from registry import policy
    from registry.errors import Forbidden, NotFound

    files = [{"path": "files/annex.pdf", "language": "en", "tier": "registered", "text": "Annex."}]
    with app.app_context():
        record = make_record(party="ZA", confidentiality={"level": "registered"}, files=files)
        annex = record.files[0]
        za, fr = make_user("party", "ZA"), make_user("party", "FR")
        officer, reader, secretariat = make_user("enforcement"), make_user("reader"), make_user("secretariat")
        for downloader in (officer, officer, fr, reader):
            audit.log(downloader, "download", file=annex, tier="registered")
        audit.log(za, "edit", record=record)
        commit()
        # The record's creation and publication, and the edit: never the downloads.
        assert [e.action for e in audit.trail(za).events] == ["edit", "publish", "create"]
        assert [e.action for e in audit.trail(secretariat).events].count("download") == 4
        assert [v is secretariat for v in (None, reader, officer, za, fr, secretariat)] == [
            policy.can(v, "see_downloaders", record) for v in (None, reader, officer, za, fr, secretariat)
        ]
        expected = [
            audit.DownloadCount("reader", None, 1),
            audit.DownloadCount("enforcement", None, 2),
            audit.DownloadCount("party", "FR", 1),
        ]
        assert audit.download_counts(za, record) == expected
        assert audit.download_counts(secretariat, record) == expected
        with pytest.raises(NotFound):
            audit.download_counts(None, record)
        for outsider in (reader, officer, fr):
            with pytest.raises(Forbidden):
                audit.download_counts(outsider, record)


def test_every_audit_action_has_one_label_in_each_language(app):
    """Issue 12: one label set for the trail, used by the desk and by a Party's history alike."""
    from flask_babel import force_locale

    from registry.labels import LABELS
    from registry.vocab import AUDIT_ACTIONS

    assert set(LABELS["audit_action"]) == set(AUDIT_ACTIONS)
    with app.test_request_context():
        for language in ("fr", "es"):
            with force_locale(language):
                translated = {a: str(LABELS["audit_action"][a]) for a in AUDIT_ACTIONS}
            with force_locale("en"):
                assert all(translated[a] != str(LABELS["audit_action"][a]) for a in AUDIT_ACTIONS)
