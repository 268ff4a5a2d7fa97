"""One-time links sent by e-mail: password reset and the invitation of an accepted user.

A token is 32 random bytes (URL-safe base64); only its sha256 is stored, so a copy of the database
opens no account. A token works once, until it expires (``RESET_TOKEN_HOURS``, default 1, or
``INVITE_TOKEN_HOURS``, default 72), and only while it is its user's newest of its purpose: issuing
a new one ends the earlier ones. It is looked up by its hash (an index lookup on a value the
attacker cannot choose to be close to a real one) and the stored hash compared in constant time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app
from sqlalchemy import select, update

from .. import clock
from ..db import session
from ..models import AccountToken, User

PURPOSES = {"reset": "RESET_TOKEN_HOURS", "invite": "INVITE_TOKEN_HOURS"}


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def issue(user: User, purpose: str) -> str:
    """A new one-time token of ``purpose`` ("reset" or "invite") for ``user``; flushes; returns it raw.

    The user's earlier unused tokens of the same purpose stop working. Raises ValueError for an
    unknown purpose.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    now = clock.utcnow()
    session.execute(
        update(AccountToken)
        .where(
            AccountToken.user_id == user.id, AccountToken.purpose == purpose, AccountToken.used_at.is_(None)
        )
        .values(used_at=now)
    )
    raw = secrets.token_urlsafe(32)
    hours = current_app.config[PURPOSES[purpose]]
    session.add(
        AccountToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=_digest(raw),
            created_at=now,
            expires_at=now + dt.timedelta(hours=hours),
        )
    )
    session.flush()
    return raw


def dummy_work() -> None:
    """As much work as ``issue`` for an address that has no account, so both take about as long.

    Hashes a fresh random token and runs an update that matches no row, like ``issue``'s.
    """
    _digest(secrets.token_urlsafe(32))
    session.execute(
        update(AccountToken)
        .where(AccountToken.user_id == -1, AccountToken.used_at.is_(None))
        .values(used_at=None)
    )


def find(raw: str) -> AccountToken | None:
    """The token ``raw`` names if it may still be used (unused, unexpired, its user active), else None.

    Anything that is not a token of ours (too long, odd characters) is simply not found.
    """
    if not raw or len(raw) > 100:
        return None
    digest = _digest(raw)
    token = session.scalar(select(AccountToken).where(AccountToken.token_hash == digest))
    if token is None or not secrets.compare_digest(token.token_hash, digest):
        return None
    if token.used_at is not None or token.expires_at <= clock.utcnow():
        return None
    # An invitation is for an active account whose access has not ended; so is a reset.
    if not token.user.is_active:
        return None
    return token


def consume(raw: str) -> User | None:
    """Use up the token ``raw``: its user if it was still valid (it never works again), else None."""
    token = find(raw)
    if token is None:
        return None
    # One UPDATE that only succeeds while the token is unused: two requests racing get one user.
    used = session.execute(
        update(AccountToken)
        .where(AccountToken.id == token.id, AccountToken.used_at.is_(None))
        .values(used_at=clock.utcnow())
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.flush()
    return token.user
