"""The audit trail: an append-only record of who did what, when, and from where.

Services call ``log`` inside the transaction of the change they record, so an action and its
trail entry commit together. Nothing in the application updates or deletes an entry: the
session refuses it here, and the database refuses it with triggers (migration 0003).
"""

from __future__ import annotations

import collections
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from .. import policy
from ..db import session
from ..errors import Forbidden, NotFound
from ..models import AuditEvent, File, Record, User
from ..policy import Viewer
from ..vocab import AUDIT_ACTIONS, ROLES
from .throttle import Count

# Actions written to the trail (the desk's filter offers these).
ACTIONS = AUDIT_ACTIONS


@event.listens_for(Session, "before_flush")
def _refuse_changes(flushing: Session, _context: Any, _instances: Any) -> None:
    """The trail is append-only: an attempt to change or delete an entry is a programming error."""
    for obj in (*flushing.dirty, *flushing.deleted):
        if isinstance(obj, AuditEvent):
            raise RuntimeError("the audit trail is append-only")


def log(
    viewer: Viewer | None,
    action: str,
    *,
    record: Record | None = None,
    file: File | None = None,
    actor: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add one entry to the trail in the current transaction.

    ``actor`` names who acted when the viewer is not a signed-in user (a failed login's address);
    ``detail`` holds what changed (old and new values, reason, comment). The client address comes
    from ``session.info["remote_addr"]``, which the request layer sets.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if file is not None and record is None:
        record = file.record
    entry = AuditEvent(
        action=action,
        actor_id=getattr(viewer, "id", None),
        actor=_one_line(actor if actor is not None else getattr(viewer, "email", "") or "", 254),
        actor_role=getattr(viewer, "role", "") or "",
        remote_addr=str(session.info.get("remote_addr") or "")[:64],
        record_id=record.id if record is not None else None,
        file_id=file.id if file is not None else None,
        party_iso=record.party_iso if record is not None else getattr(viewer, "party_iso", None),
        detail=detail,
    )
    session.add(entry)
    return entry


def log_failed_sign_in(actor: str, counts: Sequence[Count]) -> list[AuditEvent]:
    """Record a failed sign-in as ``actor`` in aggregate, so that repeating it cannot fill the trail.

    ``counts`` are the throttle's counts of the attempt (``throttle.take``). The first failure of
    a run of any of them is a ``login_failed`` entry; a counter whose failures reach its limit, and
    each time they double after (5, 10, 20 ...), is a ``login_throttled`` entry with its scope, its
    count and the wait it now imposes. Other failures are only counted. At most one failure in a
    wait gets this far, so an attacker cannot write faster than the waits allow.
    """
    entries = []
    if any(count.failures == 1 for count in counts):
        entries.append(log(None, "login_failed", actor=actor))
    for count in counts:
        times, rest = divmod(count.failures, count.key.limit.free)
        if times and not rest and not times & (times - 1):  # the limit times a power of two
            entries.append(
                log(
                    None,
                    "login_throttled",
                    actor=actor,
                    scope=count.key.scope,
                    failures=count.failures,
                    wait_seconds=count.wait,
                )
            )
    return entries


def log_refusal(viewer: Viewer | None, kind: str, refusals: int, **detail: Any) -> AuditEvent | None:
    """Record that ``viewer`` was refused (``kind``: "forbidden", "csrf" or "desk"), in aggregate.

    ``refusals`` is how many refusals of this kind the same viewer (or address) has had in the
    current window, this one included; only the 1st, 2nd, 4th, 8th ... are written, with that count,
    so that repeating a refused request cannot fill the trail. Returns the entry, or None.
    """
    if refusals < 1 or refusals & (refusals - 1):
        return None
    return log(viewer, "refused", kind=kind, refusals=refusals, **detail)


def _one_line(text: str, limit: int) -> str:
    """``text`` fit for a one-line column of the trail, at most ``limit`` characters.

    What a database may refuse or a line cannot show (NUL and other control characters, line and
    paragraph separators) becomes U+FFFD, so the entry still shows that something was there.
    """
    shown = "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in text)
    return shown[:limit]


@dataclass
class TrailPage:
    """One page of the trail, newest first."""

    events: list[AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))


def trail(
    viewer: Viewer | None,
    *,
    record_id: str | None = None,
    action: str | None = None,
    party: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> TrailPage:
    """The entries ``viewer`` may read, newest first: the Secretariat all, a Party its own records'
    but not who downloaded them (``download_counts`` says how many did)."""
    query = select(AuditEvent).where(policy.visible_audit_clause(viewer))
    if record_id:
        query = query.where(AuditEvent.record_id == record_id)
    if action:
        query = query.where(AuditEvent.action == action)
    if party:
        query = query.where(AuditEvent.party_iso == party)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    events = list(
        session.scalars(query.order_by(AuditEvent.id.desc()).offset((page - 1) * per_page).limit(per_page))
    )
    return TrailPage(events=events, total=total, page=page, per_page=per_page)


@dataclass(frozen=True)
class DownloadCount:
    """How many downloads of a record's non-public files people of one role (and Party) made."""

    role: str
    # The downloaders' Party, for Parties' users; None for every other role.
    party_iso: str | None
    count: int


def download_counts(viewer: Viewer | None, record: Record) -> list[DownloadCount]:
    """How often ``record``'s non-public files were downloaded, by role, and by Party for Parties'
    users: what the record's keepers may know of its readers without anyone being named (who they
    were stays in the Secretariat's trail). In the order of the roles, then of the Parties.

    Raises NotFound when ``viewer`` may not see ``record``, Forbidden when it does not keep it.
    """
    if not policy.can(viewer, "view", record):
        raise NotFound(record.id)
    if not policy.can(viewer, "see_history", record):
        raise Forbidden("see_history")
    # A user's Party is set when the account is made and never changes, so today's is the one
    # they downloaded as; the entry itself keeps their role as it was.
    rows = session.execute(
        select(AuditEvent.actor_role, User.party_iso, func.count())
        .select_from(AuditEvent)
        .outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.record_id == record.id, AuditEvent.action == "download")
        .group_by(AuditEvent.actor_role, User.party_iso)
    ).all()
    totals: collections.Counter[tuple[str, str | None]] = collections.Counter()
    for role, party_iso, n in rows:
        totals[role, party_iso if role == "party" else None] += n
    counts = [DownloadCount(role, party_iso, n) for (role, party_iso), n in totals.items()]
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(counts, key=lambda c: (order.get(c.role, len(order)), c.role, c.party_iso or ""))
