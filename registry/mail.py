"""E-mail: built when asked for, delivered only once the transaction has committed.

With ``MAIL_SERVER`` set a message goes out by SMTP; without it (development, tests) it is
written as an ``.eml`` file into ``MAIL_OUTBOX``. A message that cannot be delivered never
fails the request and is never dropped: it is logged and kept in ``MAIL_OUTBOX/failed/``,
from where ``resend_failed`` (``flask --app registry mail-resend``) tries it again.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import smtplib
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parseaddr
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask, current_app, url_for

from .config import ConfigError
from .db import after_commit

FAILED = "failed"

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


def _settings() -> _Settings:
    return _Settings.from_config(current_app.config)


def one_line(text: str) -> str:
    """``text`` with every kind of line break turned into a space, fit for a subject."""
    return _LINE_BREAK.sub(" ", text)


def send(to: str, subject: str, body: str, in_background: bool = False) -> None:
    """Send a plain-text UTF-8 message to one address once the current transaction commits.

    Nothing is sent if the transaction rolls back. Delivery problems are logged and the
    message is kept in ``MAIL_OUTBOX/failed/``; they never reach the caller. With
    ``in_background``, an SMTP delivery runs in a thread of its own, so the response does not wait
    for the server (a password reset must answer as fast whether or not the address has an account).
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
    deliver = partial(_deliver_or_keep, current_app._get_current_object(), settings, message)
    if in_background and settings.server is not None:
        after_commit(threading.Thread(target=deliver, name="mail").start)
    else:
        after_commit(deliver)


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


def _deliver_or_keep(app: Flask, settings: _Settings, message: EmailMessage) -> None:
    try:
        _deliver(settings, message)
    # Whatever goes wrong, the data is already committed: the request must still succeed.
    except Exception as exc:
        try:
            path = _write(settings.outbox / FAILED, message)
        except OSError:
            app.logger.exception(
                "Mail to %s (%s) not delivered and could not be kept", message["To"], message["Subject"]
            )
            return
        app.logger.warning("Mail to %s not delivered (%s); kept as %s", message["To"], exc, path)


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


def _read(fh: Any) -> EmailMessage:
    return BytesParser(policy=policy.default).parse(fh)  # type: ignore[return-value]


def resend_failed() -> int:
    """Try again to deliver every message kept in ``MAIL_OUTBOX/failed/``; return how many went.

    A message that fails again stays there and is logged. Several processes may run this at
    once: each message is locked while it is tried, so none goes out twice.
    """
    app = current_app._get_current_object()
    settings = _settings()
    sent = 0
    for path in sorted((settings.outbox / FAILED).glob("*.eml")):
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            continue
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            # Another process may have sent and removed it between our open and our lock.
            if os.fstat(fh.fileno()).st_nlink == 0:
                continue
            message = _read(fh)
            try:
                _deliver(settings, message)
            except Exception as exc:
                app.logger.warning(
                    "Mail to %s still not delivered (%s); kept as %s", message["To"], exc, path
                )
                continue
            path.unlink()
            sent += 1
    return sent


def outbox(limit: int = 200) -> list[OutboxMessage]:
    """The newest ``limit`` messages of ``MAIL_OUTBOX`` and its ``failed/`` folder, newest first."""
    folder = _settings().outbox
    found = [(path, False) for path in folder.glob("*.eml")]
    found += [(path, True) for path in (folder / FAILED).glob("*.eml")]
    found.sort(key=lambda item: item[0].name, reverse=True)
    messages = []
    for path, failed in found[: max(limit, 0)]:
        try:
            with path.open("rb") as fh:
                message = _read(fh)
        except FileNotFoundError:
            # Resent and removed since the folder was listed.
            continue
        date = message["Date"]
        text = message.get_body(preferencelist=("plain",))
        messages.append(
            OutboxMessage(
                name=path.name,
                date=date.datetime if date is not None else None,
                to=str(message["To"] or ""),
                subject=str(message["Subject"] or ""),
                body=text.get_content() if text is not None else "",
                failed=failed,
            )
        )
    return messages
