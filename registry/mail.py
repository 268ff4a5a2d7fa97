"""E-mail: written into a delivery queue with the change that sends it, delivered off the request.

``send`` adds the message to ``mail_queue`` in the current transaction, so it goes out only if the
change commits, and is never lost once it has. A courier thread of each worker delivers the queue
(``deliver_due``) and tries a message that failed again with back-off (1 minute, doubling, at most
6 hours apart) until ``MAX_ATTEMPTS``; a mail server that is down or slow never slows or fails a
request. Under testing (``MAIL_DELIVERY = "inline"``) the queue is delivered right after commit,
so a test reads what went out at once.

With ``MAIL_SERVER`` set a message goes out by SMTP; without it (development, tests) it is written
as an ``.eml`` file into ``MAIL_OUTBOX``. ``resend_failed`` (``flask --app registry mail-resend``)
tries every undelivered message at once, given up ones included.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_request_context, url_for
from sqlalchemy import delete, or_, select, update

from . import clock
from .background import WorkerThread
from .config import ConfigError
from .db import after_commit, commit, rollback, session
from .models import QueuedMail

# A message that failed is tried again after 1 minute, then 2, 4 ... at most 6 hours apart, and given
# up (kept, shown on the desk's outbox, and tried again by ``mail-resend``) after this many attempts:
# about three days of a server that is down.
MAX_ATTEMPTS = 16
FIRST_RETRY = dt.timedelta(minutes=1)
LONGEST_WAIT = dt.timedelta(hours=6)
# A courier owns a message it took this long at most (an SMTP exchange is bounded by MAIL_TIMEOUT).
LEASE = dt.timedelta(minutes=5)
# Delivered messages are kept this long for the desk's outbox page, then deleted: they may quote
# restricted material.
KEEP_SENT = dt.timedelta(days=30)
# How often an idle courier looks for messages due again.
POLL_SECONDS = 30.0

# str.splitlines() and some mail software also end a line at these, not only at CR and LF.
_LINE_BREAK = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
# One bare address: no display name, no list, nothing a header parser could split.
_ADDRESS = re.compile(r"[^@\s,;:<>()\[\]\"\\]+@[^@\s,;:<>()\[\]\"\\]+")


@dataclass(frozen=True)
class OutboxMessage:
    """One message of the outbox folder, as the Secretariat's outbox page lists it."""

    name: str
    date: datetime | None
    to: str
    subject: str
    body: str
    failed: bool
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class _Settings:
    server: str | None
    port: int
    username: str | None
    password: str | None
    starttls: bool
    ssl: bool
    sender: str
    timeout: float
    outbox: Path

    @classmethod
    def from_config(cls, config: Any) -> _Settings:
        settings = cls(
            server=config["MAIL_SERVER"] or None,
            port=int(config["MAIL_PORT"]),
            username=config["MAIL_USERNAME"] or None,
            password=config["MAIL_PASSWORD"] or None,
            starttls=bool(config["MAIL_STARTTLS"]),
            ssl=bool(config["MAIL_SSL"]),
            sender=config["MAIL_SENDER"],
            timeout=float(config["MAIL_TIMEOUT"]),
            outbox=Path(config["MAIL_OUTBOX"]),
        )
        if settings.ssl and settings.starttls:
            raise ConfigError("MAIL_SSL and MAIL_STARTTLS exclude each other: set one of them.")
        if _LINE_BREAK.search(settings.sender) or "@" not in parseaddr(settings.sender)[1]:
            raise ConfigError(f"MAIL_SENDER is not an e-mail address: {settings.sender!r}")
        return settings


def link(endpoint: str, **values: object) -> str:
    """An absolute link for an e-mail, built on ``PUBLIC_URL``, never on a request's ``Host``.

    There may be no request (a command); and were it built on the request's host, anyone asking for
    a message to be sent to someone else (a password reset) with a ``Host`` of their own would get
    the link, and its one-time token, pointing at their site.
    """
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        return url_for(endpoint, _external=True, **values)


def init_app(app: Flask) -> None:
    """Check the mail settings of ``app``.

    Raises ConfigError when MAIL_SSL and MAIL_STARTTLS are both set or MAIL_SENDER is not an address.
    """
    _Settings.from_config(app.config)
    if app.config["MAIL_DELIVERY"] == "courier":
        # Every worker that serves requests delivers the queue, so a message due again goes out
        # whichever worker queued it, and after a restart.
        app.before_request(courier(app).ensure_running)


def _settings() -> _Settings:
    return _Settings.from_config(current_app.config)


def one_line(text: str) -> str:
    """``text`` with every kind of line break turned into a space, fit for a subject."""
    return _LINE_BREAK.sub(" ", text)


def send(to: str, subject: str, body: str, in_background: bool = False) -> None:
    """Queue a plain-text UTF-8 message to one address; it goes out once the transaction commits.

    Nothing is sent if the transaction rolls back. Delivery problems are logged and the message is
    tried again with back-off; they never reach the caller. ``in_background`` hands the message to
    the courier even under inline delivery, so the response never waits for the server (a password
    reset must answer as fast whether or not the address has an account).
    Raises ValueError when ``to`` is not one bare address or either ``to`` or ``subject``
    holds a line break (header injection).
    """
    if _LINE_BREAK.search(to) or _LINE_BREAK.search(subject):
        raise ValueError("An e-mail address or subject must not contain line breaks.")
    if not _ADDRESS.fullmatch(to):
        raise ValueError(f"Not a single e-mail address: {to!r}")
    settings = _settings()
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # An explicit domain: without one make_msgid asks DNS for this host's name.
    message["Message-ID"] = make_msgid(domain=parseaddr(settings.sender)[1].rpartition("@")[2])
    # Quoted-printable keeps the message 7-bit clean for relays without 8BITMIME.
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    queued = QueuedMail(
        recipient=to,
        subject=subject[:998],
        message=message.as_bytes(),
        created_at=clock.utcnow(),
        attempts=0,
        next_attempt_at=clock.utcnow(),
        last_error="",
    )
    session.add(queued)
    app = current_app._get_current_object()
    inline = current_app.config["MAIL_DELIVERY"] == "inline" or not has_request_context()
    if inline and not in_background:
        after_commit(lambda: _deliver_now(app, queued.id))
    else:
        after_commit(courier(app).wake)


def _deliver_now(app: Flask, message_id: int) -> None:
    """Deliver one message just committed; a failure leaves it queued, and never reaches the caller."""
    try:
        deliver_due(ids=[message_id])
    except Exception:
        app.logger.exception("Delivering mail %s failed; it stays in the queue", message_id)
        rollback()


def _wait_after(attempts: int) -> dt.timedelta:
    """How long a message that failed ``attempts`` times waits before its next try."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)


def deliver_due(ids: list[int] | None = None, everything: bool = False, limit: int = 200) -> int:
    """Deliver the queued messages that are due (only ``ids``, if given); return how many went.

    Each message is taken with a lease first, so two couriers (workers, nodes) never send it twice;
    one that fails waits ``_wait_after(attempts)``, and after ``MAX_ATTEMPTS`` is given up. With
    ``everything``, undelivered messages are tried now, the given-up ones too. Commits.
    """
    app = current_app._get_current_object()
    settings = _settings()
    now = clock.utcnow()
    due = select(QueuedMail.id).where(
        QueuedMail.sent_at.is_(None), or_(QueuedMail.claimed_until.is_(None), QueuedMail.claimed_until < now)
    )
    if not everything:
        due = due.where(QueuedMail.next_attempt_at <= now)
    if ids is not None:
        due = due.where(QueuedMail.id.in_(ids))
    sent = 0
    for message_id in list(session.scalars(due.order_by(QueuedMail.id).limit(limit))):
        # The lease runs from the moment it is taken: each delivery before this one may have taken
        # up to MAIL_TIMEOUT.
        taking = clock.utcnow()
        taken = session.execute(
            update(QueuedMail)
            .where(
                QueuedMail.id == message_id,
                QueuedMail.sent_at.is_(None),
                or_(QueuedMail.claimed_until.is_(None), QueuedMail.claimed_until < taking),
            )
            .values(claimed_until=taking + LEASE)
        )
        commit()
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue
        queued = session.get(QueuedMail, message_id)
        try:
            _deliver(settings, _parse(queued.message))
        # Whatever goes wrong, the data is already committed: the message waits for its next try.
        except Exception as exc:
            queued.attempts += 1
            queued.last_error = f"{type(exc).__name__}: {exc}"[:500]
            given_up = queued.attempts >= MAX_ATTEMPTS
            queued.next_attempt_at = None if given_up else clock.utcnow() + _wait_after(queued.attempts)
            app.logger.warning(
                "Mail to %s not delivered (%s); %s",
                queued.recipient,
                exc,
                "given up" if given_up else f"next try at {queued.next_attempt_at:%Y-%m-%d %H:%M} UTC",
            )
        else:
            queued.sent_at, queued.next_attempt_at = clock.utcnow(), None
            sent += 1
        queued.claimed_until = None
        commit()
    session.execute(delete(QueuedMail).where(QueuedMail.sent_at < now - KEEP_SENT))
    commit()
    return sent


class Courier(WorkerThread):
    """The thread of one worker that delivers the queue: woken after a commit that queued mail, and
    every ``POLL_SECONDS`` for the messages due again."""

    name = "mail-courier"
    poll_seconds = POLL_SECONDS

    def work(self) -> None:
        deliver_due()


def courier(app: Flask) -> Courier:
    """The courier of ``app`` (one per process)."""
    return app.extensions.setdefault("registry.mail_courier", Courier(app))


def _deliver(settings: _Settings, message: EmailMessage) -> None:
    if settings.server is None:
        _write(settings.outbox, message)
        return
    context = ssl.create_default_context()
    if settings.ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.server, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.server, settings.port, timeout=settings.timeout)
    with smtp:
        if settings.starttls:
            smtp.starttls(context=context)
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


def _write(folder: Path, message: EmailMessage) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    # A UTC timestamp first, so that names sort oldest to newest.
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.eml"
    partial_path = folder / f".{name}.part"
    # Messages may quote restricted material: readable by the application's user only.
    fd = os.open(partial_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(message.as_bytes())
    # Readers only see *.eml names, so they never meet a half-written file.
    return partial_path.replace(folder / name)


def _parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


def resend_failed() -> int:
    """Try now every message not delivered yet, the given-up ones too; return how many went.

    Several processes may run this at once (and the couriers beside them): each message is taken
    with a lease while it is tried, so none goes out twice.
    """
    return deliver_due(everything=True, limit=10_000)


def outbox(limit: int = 200) -> list[OutboxMessage]:
    """The newest ``limit`` messages of the queue, delivered or not, newest first."""
    rows = session.scalars(select(QueuedMail).order_by(QueuedMail.id.desc()).limit(max(limit, 0)))
    messages = []
    for row in rows:
        message = _parse(row.message)
        text = message.get_body(preferencelist=("plain",))
        date = message["Date"]
        messages.append(
            OutboxMessage(
                name=str(row.id),
                date=date.datetime if date is not None else None,
                to=row.recipient,
                subject=str(message["Subject"] or ""),
                body=text.get_content() if text is not None else "",
                failed=row.sent_at is None and row.attempts > 0,
                attempts=row.attempts,
                next_attempt_at=row.next_attempt_at,
                error=row.last_error,
            )
        )
    return messages
