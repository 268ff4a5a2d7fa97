"""The audit trail: what is written, who reads it, and that nobody can change it."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from registry.db import commit, get_engine, rollback, session
from registry.models import AuditEvent
from registry.services import audit

from .conftest import login
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
