"""E-mails about submissions: who is told what, in their own language, showing only what they may see.

Each message is composed for one recipient, under that recipient's locale, and names a record
only if the policy lets that recipient view it. Delivery happens after commit (``registry.mail``).
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app, render_template
from flask_babel import force_locale, lazy_gettext
from sqlalchemy import or_, select

from .. import clock, mail, policy
from ..db import session
from ..models import Call, Record, User


def _recipients(query) -> list[User]:  # type: ignore[no-untyped-def]
    # Expired accounts are anonymous (DESIGN.md): they get no notices either.
    now = clock.utcnow()
    usable = User.active.is_(True) & or_(User.expires_at.is_(None), User.expires_at > now)
    return list(session.scalars(query.where(usable).order_by(User.email)))


def secretariat() -> list[User]:
    """The active Secretariat accounts."""
    return _recipients(select(User).where(User.role == "secretariat"))


def party_users(party_iso: str | None) -> list[User]:
    """The active focal-point accounts of a Party."""
    if not party_iso:
        return []
    return _recipients(select(User).where(User.role == "party", User.party_iso == party_iso))


def _send(  # type: ignore[no-untyped-def]
    users: Iterable[User], template: str, subject, about: str, record: Record | None = None, **context
) -> int:
    """Compose and queue one message per user who may see ``record``; returns how many were queued."""
    sent = 0
    for user in users:
        if record is not None and not policy.can(user, "view", record):
            continue
        language = user.language if user.language in current_app.config["LANGUAGES"] else "en"
        with force_locale(language):
            body = render_template(f"mail/{template}.txt", user=user, record=record, **context)
            # Titles saved before line separators were refused must not stop the message.
            title = str(subject) % {"title": mail.one_line(about[:120])}
        mail.send(user.email, title, body)
        sent += 1
    return sent


def submitted(record: Record) -> int:
    """Tell the Secretariat that a Party submitted ``record`` (or its revision)."""
    return _send(
        secretariat(),
        "submitted",
        lazy_gettext("Submitted for review: %(title)s"),
        record.title,
        record,
        link=mail.link("admin.review", record_id=record.id),
    )


def returned(record: Record) -> int:
    """Tell the Party that the Secretariat returned its submission, with the comment."""
    return _send(
        party_users(record.party_iso),
        "returned",
        lazy_gettext("Returned with a comment: %(title)s"),
        record.title,
        record,
        link=mail.link("submit.edit", record_id=record.id),
    )


def published(record: Record) -> int:
    """Tell the Party that its submission is published."""
    return _send(
        party_users(record.party_iso),
        "published",
        lazy_gettext("Published: %(title)s"),
        record.title,
        record,
        link=mail.link("public.record", record_id=record.id),
    )


def reminder(call: Call, party_iso: str) -> int:
    """Remind a Party's focal points of a call for information they have not answered."""
    return _send(
        party_users(party_iso),
        "reminder",
        lazy_gettext("Reminder: call for information %(title)s"),
        call.notification,
        None,
        call=call,
        link=mail.link("submit.home"),
    )
