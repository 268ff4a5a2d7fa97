"""E-mail goes out only after commit, by real SMTP or into the outbox folder, and is never lost."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from sqlalchemy import select

from registry import clock, mail
from registry.db import commit, rollback, session
from registry.errors import Invalid, Rejected
from registry.models import QueuedMail

SUBJECT = "Protocole de quarantaine – tortues"
BODY = "Bonjour,\n\nLe protocole révisé pour les tortues saisies est publié.\nÀ bientôt — le Secrétariat\n"


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients.append(list(envelope.rcpt_tos))
        # SMTP carries CRLF line ends; a mail store keeps native ones, as the outbox files do.
        content = envelope.content.replace(b"\r\n", b"\n")
        self.messages.append(BytesParser(policy=policy.default).parsebytes(content))
        return "250 Message accepted"


class SmtpServer:
    """A real SMTP server on a free loopback port; not listening until ``start``."""

    def __init__(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        # An explicit server_hostname spares aiosmtpd a DNS lookup of this machine's name.
        self._controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, server_hostname="registry.test"
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """An SMTP server that the test starts when it wants; always stopped afterwards."""
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


def use_smtp(app: Flask, server: SmtpServer) -> None:
    """Point ``app`` at ``server``."""
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port, MAIL_TIMEOUT=5)


def use_outbox(app: Flask) -> None:
    """Make ``app`` write its mail into the outbox folder, whatever the environment says."""
    app.config.update(MAIL_SERVER=None)


def add_send_route(app: Flask, status: int = 200, fail: bool = False) -> None:
    """A view that sends two messages and answers ``status``, or raises when ``fail``: the unit of
    work commits what a view returned, whatever its status, and rolls back what raised."""

    def view() -> tuple[str, int]:
        mail.send("focal.point@party.example", SUBJECT, BODY)
        mail.send("secretariat@cites.example", "Second", "Deux messages, une transaction.")
        if fail:
            raise Invalid({"field": ["Refused after the messages were queued."]})
        return "done", status

    app.add_url_rule("/_test/send", "test_send", view)


def outbox_files(app: Flask, failed: bool = False) -> list[Path]:
    folder = Path(app.config["MAIL_OUTBOX"])
    return sorted((folder / "failed" if failed else folder).glob("*.eml"))


def test_committed_request_delivers_every_message_by_smtp(app, smtp):
    smtp.start()
    use_smtp(app, smtp)
    add_send_route(app)

    response = app.test_client().get("/_test/send")

    assert response.status_code == 200
    assert smtp.inbox.recipients == [["focal.point@party.example"], ["secretariat@cites.example"]]
    first = smtp.inbox.messages[0]
    assert first["To"] == "focal.point@party.example"
    assert first["From"] == app.config["MAIL_SENDER"]
    assert first["Subject"] == SUBJECT
    assert first.get_content_charset() == "utf-8"
    assert first.get_content() == BODY
    assert first["Date"].datetime is not None
    assert first["Message-ID"] != smtp.inbox.messages[1]["Message-ID"]
    assert outbox_files(app) == outbox_files(app, failed=True) == []


def test_nothing_goes_out_before_the_commit(app, smtp):
    smtp.start()
    use_smtp(app, smtp)

    with app.app_context():
        mail.send("focal.point@party.example", SUBJECT, BODY)
        mail.send("reader@ngo.example", "Other", "Text")
        assert smtp.inbox.messages == []
        commit()

    assert [message["To"] for message in smtp.inbox.messages] == [
        "focal.point@party.example",
        "reader@ngo.example",
    ]


def test_nothing_goes_out_when_the_transaction_rolls_back(app, smtp):
    smtp.start()
    use_smtp(app, smtp)
    add_send_route(app, fail=True)

    assert app.test_client().get("/_test/send").status_code == 400
    assert queued(app) == []
    with app.app_context():
        mail.send("focal.point@party.example", SUBJECT, BODY)
        rollback()
        commit()

    assert smtp.inbox.messages == []
    assert outbox_files(app) == outbox_files(app, failed=True) == []


def test_a_view_that_answers_with_an_error_status_still_commits(app, smtp):
    """Issue 12: the commit follows whether an exception escaped the view, not the status code: a
    page answered 400 on purpose (a failed sign-in, with its counts and trail) keeps its work."""
    smtp.start()
    use_smtp(app, smtp)
    add_send_route(app, status=400)

    assert app.test_client().get("/_test/send").status_code == 400
    assert [message["Subject"] for message in smtp.inbox.messages] == [SUBJECT, "Second"]


def test_a_form_rejected_by_its_view_keeps_nothing_of_the_attempt(app, smtp):
    """A view answers bad input by raising ``Rejected``: its form comes back with the status it
    chose, after the unit of work rolled back what the attempt wrote (here, two queued messages)."""
    smtp.start()
    use_smtp(app, smtp)

    def view() -> str:
        mail.send("focal.point@party.example", SUBJECT, BODY)
        mail.send("secretariat@cites.example", "Second", "Deux messages, une transaction.")
        raise Rejected(lambda: ("the form again, with its messages", 422))

    app.add_url_rule("/_test/rejected", "test_rejected", view)
    response = app.test_client().get("/_test/rejected")

    assert response.status_code == 422
    assert response.get_data(as_text=True) == "the form again, with its messages"
    assert queued(app) == [] and smtp.inbox.messages == []


def test_without_a_server_messages_land_in_the_outbox(app):
    use_outbox(app)

    with app.app_context():
        mail.send("focal.point@party.example", SUBJECT, BODY)
        commit()
        mail.send("reader@ngo.example", "Later", "Second message")
        commit()
        listed = mail.outbox()

    files = outbox_files(app)
    assert len(files) == 2
    stored = BytesParser(policy=policy.default).parsebytes(files[0].read_bytes())
    assert stored["Subject"] == SUBJECT
    assert stored.get_content() == BODY
    assert [message.subject for message in listed] == ["Later", SUBJECT]
    oldest = listed[1]
    # The listing reads the delivery queue: the same message the file holds.
    assert oldest.body == stored.get_content()
    assert oldest.to == "focal.point@party.example"
    assert oldest.body == BODY
    assert oldest.date is not None
    assert not oldest.failed


def test_outbox_is_limited_to_the_newest(app):
    use_outbox(app)
    with app.app_context():
        for n in range(3):
            mail.send("reader@ngo.example", f"Message {n}", "Text")
            commit()
        assert [message.subject for message in mail.outbox(limit=2)] == ["Message 2", "Message 1"]


def queued(app: Flask) -> list[QueuedMail]:
    """Every message of the delivery queue, oldest first."""
    with app.app_context():
        return list(session.scalars(select(QueuedMail).order_by(QueuedMail.id)))


def test_a_server_that_is_down_keeps_the_message_until_resent(app, smtp, caplog):
    use_smtp(app, smtp)
    add_send_route(app)

    with caplog.at_level(logging.WARNING):
        response = app.test_client().get("/_test/send")

    assert response.status_code == 200
    waiting = queued(app)
    assert [(m.sent_at, m.attempts) for m in waiting] == [(None, 1), (None, 1)]
    assert all("Connection" in m.last_error or "refused" in m.last_error.lower() for m in waiting)
    assert sum("not delivered" in record.getMessage() for record in caplog.records) == 2
    with app.app_context():
        listed = mail.outbox()
        assert {message.subject for message in listed} == {SUBJECT, "Second"}
        assert all(message.failed for message in listed)
        assert mail.resend_failed() == 0

    smtp.start()
    with app.app_context():
        assert mail.resend_failed() == 2
        assert mail.resend_failed() == 0
        assert not any(message.failed for message in mail.outbox())

    assert sorted(message["Subject"] for message in smtp.inbox.messages) == sorted([SUBJECT, "Second"])
    delivered = next(message for message in smtp.inbox.messages if message["Subject"] == SUBJECT)
    assert delivered["To"] == "focal.point@party.example"
    assert delivered.get_content() == BODY


def test_a_failed_message_is_tried_again_with_back_off_then_given_up(app, smtp, monkeypatch):
    """Issue 12: the queue tries a failed message again 1, 2, 4 ... minutes later (at most 6 hours
    apart), not before, and after ``MAX_ATTEMPTS`` stops trying until ``mail-resend``."""
    use_smtp(app, smtp)
    now = [clock.utcnow()]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    with app.app_context():
        mail.send("focal.point@party.example", SUBJECT, BODY)
        commit()
        waits = []
        for attempt in range(1, mail.MAX_ATTEMPTS):
            (row,) = session.scalars(select(QueuedMail)).all()
            assert row.attempts == attempt and row.sent_at is None
            waits.append(row.next_attempt_at - now[0])
            now[0] = row.next_attempt_at - dt.timedelta(seconds=1)
            assert mail.deliver_due() == 0
            assert session.scalar(select(QueuedMail.attempts)) == attempt  # not tried before it is due
            now[0] = row.next_attempt_at
            assert mail.deliver_due() == 0
        (row,) = session.scalars(select(QueuedMail)).all()
        assert row.attempts == mail.MAX_ATTEMPTS and row.next_attempt_at is None
        now[0] += dt.timedelta(days=30)
        assert mail.deliver_due() == 0 and session.scalar(select(QueuedMail.attempts)) == mail.MAX_ATTEMPTS
    minutes = [wait.total_seconds() / 60 for wait in waits]
    assert minutes[:5] == [1, 2, 4, 8, 16] and max(minutes) == 360 and minutes == sorted(minutes)
    smtp.start()
    with app.app_context():
        assert mail.resend_failed() == 1
    assert [message["Subject"] for message in smtp.inbox.messages] == [SUBJECT]


def test_a_delivered_message_is_kept_a_month_then_deleted(app, monkeypatch):
    use_outbox(app)
    now = [clock.utcnow()]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    with app.app_context():
        mail.send("focal.point@party.example", SUBJECT, BODY)
        commit()
        assert session.scalar(select(QueuedMail.sent_at)) == now[0]
        now[0] += mail.KEEP_SENT - dt.timedelta(minutes=1)
        mail.deliver_due()
        assert len(mail.outbox()) == 1
        now[0] += dt.timedelta(minutes=2)
        mail.deliver_due()
        assert mail.outbox() == []


class BlackHole:
    """A loopback server that accepts connections and never answers: a mail server that hangs."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.port: int = self._socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        try:
            while True:
                self.accepted.append(self._socket.accept()[0])
        except OSError:
            return

    def close(self) -> None:
        # Shut down first: a bare close leaves the socket listening while a thread waits in accept.
        self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        for connection in self.accepted:
            connection.close()


def test_a_hanging_mail_server_never_holds_up_the_request(app, smtp):
    """Issue 12: with the courier (as in production), the request answers while the mail server
    holds the connection without a word; the message waits in the queue, is tried again once the
    server gives up, and goes out when a server answers."""
    hole = BlackHole()
    try:
        app.config.update(MAIL_DELIVERY="courier", MAIL_SERVER="127.0.0.1", MAIL_PORT=hole.port)
        app.config.update(MAIL_TIMEOUT=60)
        add_send_route(app)
        response = app.test_client().get("/_test/send")
        assert response.status_code == 200
        # The response came back with the messages still queued: nobody waited for the server.
        assert [(m.sent_at, m.attempts) for m in queued(app)] == [(None, 0), (None, 0)]
        deadline = time.monotonic() + 10
        while not hole.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hole.accepted, "the courier never tried to deliver"
    finally:
        hole.close()
    deadline = time.monotonic() + 20
    while sum(m.attempts for m in queued(app)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    mail.courier(app).stop()
    assert [(m.sent_at, m.attempts) for m in queued(app)] == [(None, 1), (None, 1)]
    smtp.start()
    use_smtp(app, smtp)
    with app.app_context():
        assert mail.resend_failed() == 2
    assert sorted(message["Subject"] for message in smtp.inbox.messages) == sorted([SUBJECT, "Second"])


def test_mail_resend_command_delivers_the_kept_messages(app, smtp, runner):
    use_smtp(app, smtp)
    with app.app_context():
        mail.send("focal.point@party.example", SUBJECT, BODY)
        commit()
    smtp.start()

    result = runner.invoke(args=["mail-resend"])

    assert result.exit_code == 0, result.output
    assert "Resent 1 e-mail(s)." in result.output
    assert [message["Subject"] for message in smtp.inbox.messages] == [SUBJECT]
    assert outbox_files(app, failed=True) == []


@pytest.mark.parametrize(
    ("to", "subject"),
    [
        ("victim@party.example\r\nBcc: everyone@elsewhere.example", "Subject"),
        ("victim@party.example\nBcc: everyone@elsewhere.example", "Subject"),
        ("victim@party.example", "Subject\r\nBcc: everyone@elsewhere.example"),
        ("victim@party.example", "Subject\nBcc: everyone@elsewhere.example"),
        ("victim@party.example", "Subject\u2028Bcc: everyone@elsewhere.example"),
        ("victim@party.example, everyone@elsewhere.example", "Subject"),
        ("not an address", "Subject"),
    ],
)
def test_header_injection_is_refused(app, to, subject):
    use_outbox(app)
    with app.app_context():
        with pytest.raises(ValueError):
            mail.send(to, subject, "Body")
        commit()
    assert outbox_files(app) == []


def test_workflow_messages_reach_their_recipients_by_smtp_in_their_language(app, smtp):
    """Submit, return and publish: each message goes over SMTP, in the recipient's language.

    The record's title holds a line separator, as titles saved before separators were refused may:
    the subject gets a space instead, and the step goes through.
    """
    from registry.db import session
    from registry.models import Record
    from registry.services.records import review

    from .factories import make_record, make_user

    smtp.start()
    use_smtp(app, smtp)
    with app.app_context():
        desk = make_user("secretariat")
        focal = make_user("party", "FR")
        focal.language = "fr"
        record = make_record(title="Tortues saisies", party="FR", status="draft")
        record.title = "Tortues\u2028saisies"  # as saved before the schema refused separators
        commit()
        review.submit(focal, record)
        commit()
        review.return_to_party(desk, session.get(Record, record.id), "Ajoutez la date d'adoption.")
        commit()
        review.submit(focal, session.get(Record, record.id))
        commit()
        review.publish(desk, session.get(Record, record.id), app.config["FILES_DIR"])
        commit()
    received = [(m["To"], m["Subject"]) for m in smtp.inbox.messages]
    assert received == [
        ("secretariat-x@test.example", "Submitted for review: Tortues saisies"),
        ("party-fr@test.example", "Renvoyé avec un commentaire : Tortues saisies"),
        ("secretariat-x@test.example", "Submitted for review: Tortues saisies"),
        ("party-fr@test.example", "Publié : Tortues saisies"),
    ]
    returned, published = smtp.inbox.messages[1].get_content(), smtp.inbox.messages[3].get_content()
    assert "Ajoutez la date d'adoption." in returned
    assert "Le Secrétariat CITES a publié votre soumission" in published
    assert f"/records/{record.id}" in published
