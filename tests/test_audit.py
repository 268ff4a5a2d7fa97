"""The audit trail: what is written, who reads it, and that nobody can change it."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from registry.db import commit, get_engine, rollback, session
from registry.models import AuditEvent
from registry.services import audit

from .conftest import csrf_token, login
from .factories import PASSWORD, make_record, make_user


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
        assert audit.trail(secretariat).total == 3


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
