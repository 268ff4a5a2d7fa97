"""The Secretariat's desk: the review queue, what a review shows, tiers, and disclosures due.

The decisions themselves live in ``services.records.review`` (publish, return, withdraw) and
``services.records.tiers`` (changing a tier); this module finds what waits for them and gathers what the
review page needs. Every function takes the viewer first and raises Forbidden for anyone the
policy does not let use the desk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, or_, select

from .. import policy
from ..db import session
from ..errors import Forbidden, Invalid, NotFound
from ..models import AuditEvent, File, Record, looks_like_id
from ..policy import Viewer
from . import audit
from .records import tiers


@dataclass(frozen=True)
class QueueFilters:
    """Filters of the review queue; each is optional."""

    party: str | None = None
    type: str | None = None
    language: str | None = None
    older_than: int | None = None

    def active(self) -> bool:
        """Whether any filter is set."""
        return any(v is not None for v in (self.party, self.type, self.language, self.older_than))


@dataclass(frozen=True)
class TierTarget:
    """Something of a record whose tier the Secretariat may change: the record, a file or a field group."""

    key: str  # "record", "file:<id>" or "field:<group>", as the form posts it
    kind: str  # record, file or field
    name: str  # the file's title or the field group's name; "" for the record
    current: str
    stricter: tuple[str, ...]
    # The tiers it may be lowered to, on purpose and with a reason: never below its record's, and
    # none for a document of the Party's pending revision.
    more_open: tuple[str, ...] = ()
    pending: bool = False
    # For the record: each more open tier it may take, with the parts that would open with it.
    opens: tuple[tuple[str, tuple[tiers.TierChange, ...]], ...] = ()


@dataclass(frozen=True)
class DisclosureDue:
    """A record whose disclosure date has come, with the parts of it that are still restricted."""

    record: Record
    restricted: list[TierTarget]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def require_desk(viewer: Viewer | None) -> None:
    """Raise Forbidden unless ``viewer`` may use the Secretariat's desk."""
    if not policy.can(viewer, "review_desk"):
        raise Forbidden("review_desk")


def review_queue(viewer: Viewer | None, filters: QueueFilters) -> list[Record]:
    """Submitted records and submitted revisions of published ones, oldest submission first.

    Raises Forbidden for anyone but the Secretariat.
    """
    require_desk(viewer)
    query = select(Record).where(or_(Record.status == "submitted", Record.revision_status == "submitted"))
    if filters.party:
        query = query.where(Record.party_iso == filters.party)
    if filters.type:
        query = query.where(Record.type == filters.type)
    if filters.language:
        query = query.where(Record.language == filters.language)
    if filters.older_than:
        query = query.where(Record.submitted_at <= _now() - dt.timedelta(days=filters.older_than))
    return list(session.scalars(query.order_by(Record.submitted_at.asc().nulls_first(), Record.id)))


def desk_counts(viewer: Viewer | None) -> dict[str, int]:
    """How many records wait for review, are back with their Party, or are drafts (revisions included).

    Raises Forbidden for anyone but the Secretariat.
    """
    require_desk(viewer)

    def count_of(state: str) -> Any:
        hit = or_(Record.status == state, Record.revision_status == state)
        return func.coalesce(func.sum(case((hit, 1), else_=0)), 0)

    submitted, returned, drafts = session.execute(
        select(count_of("submitted"), count_of("returned"), count_of("draft"))
    ).one()
    return {"submitted": int(submitted), "returned": int(returned), "drafts": int(drafts)}


def get_record(viewer: Viewer | None, record_id: str) -> Record:
    """The record ``record_id`` for review. Raises Forbidden off the desk, NotFound when missing."""
    require_desk(viewer)
    record = session.get(Record, record_id) if looks_like_id(record_id, "r") else None
    if record is None or not policy.can(viewer, "review", record):
        raise NotFound(record_id)
    return record


def comment_history(viewer: Viewer | None, record: Record) -> list[AuditEvent]:
    """The Secretariat's comments on ``record`` each time it was returned, newest first."""
    require_desk(viewer)
    return audit.trail(viewer, record_id=record.id, action="return", per_page=200).events


def waiting_since(record: Record) -> int | None:
    """How many whole days the submission of ``record`` has waited, or None if it was never submitted."""
    if record.submitted_at is None:
        return None
    return max(0, (_now() - record.submitted_at).days)


def tier_targets(record: Record) -> list[TierTarget]:
    """The record, each of its files and each sensitive field group, with the tiers each may take."""
    every = policy.allowed_tiers(policy.CONFIDENTIAL)

    def stricter(current: str) -> tuple[str, ...]:
        return tuple(t for t in every if policy.rank(t) > policy.rank(current))

    def more_open(current: str) -> tuple[str, ...]:
        floor = policy.rank(record.tier)
        return tuple(t for t in every if floor <= policy.rank(t) < policy.rank(current))

    lower = tuple(t for t in every if policy.rank(t) < policy.rank(record.tier))
    targets = [
        TierTarget(
            "record",
            "record",
            "",
            record.tier,
            stricter(record.tier),
            lower,
            opens=tuple((t, tuple(tiers.opened_with_record(record, t))) for t in lower),
        )
    ]
    for file in record.files:
        current = policy.file_tier(file)
        targets.append(
            TierTarget(
                f"file:{file.id}",
                "file",
                file.title or file.original_name,
                current,
                stricter(current),
                () if file.pending else more_open(current),
                pending=file.pending,
            )
        )
    for group in policy.SENSITIVE_FIELDS.get(record.type, {}):
        current = policy.field_tier(record, group)
        targets.append(
            TierTarget(f"field:{group}", "field", group, current, stricter(current), more_open(current))
        )
    return targets


def change_tier(viewer: Viewer, record: Record, target: str, tier: str, reason: str) -> None:
    """Give ``target`` (``record``, ``file:<id>`` or ``field:<group>``) of ``record`` the tier ``tier``.

    Raises Forbidden off the desk, Invalid for a target that is not part of the record, and
    whatever ``tiers.change_tier`` raises (an unknown tier or the current one, a lowering it
    refuses, no reason).
    """
    require_desk(viewer)
    kind, _, name = target.partition(":")
    if kind == "record" and not name:
        tiers.change_tier(viewer, record, tier, reason)
    elif kind == "file":
        file = session.get(File, name) if looks_like_id(name, "f") else None
        if file is None or file.record_id != record.id or file.retired:
            raise Invalid({"target": [_l("This record has no such file.")]})
        tiers.change_tier(viewer, file, tier, reason)
    elif kind == "field":
        tiers.change_tier(viewer, record, tier, reason, field=name)
    else:
        raise Invalid({"target": [_l("Choose the record, a file or a field.")]})


def publish_lowers(viewer: Viewer | None, record: Record) -> list[tiers.TierChange]:
    """The parts that publishing ``record`` would make more open than they are published, or than
    the Secretariat last set them; publishing them takes a reason.

    Raises Forbidden off the desk.
    """
    require_desk(viewer)
    return tiers.publish_lowers(record)


def disclosures_due(viewer: Viewer | None, today: dt.date) -> list[DisclosureDue]:
    """Records whose Party allowed disclosure by ``today`` and that still restrict something.

    The record itself, a file or a sensitive field group may be what is restricted; the desk
    reviews each with the Party (nothing is disclosed automatically). Documents waiting in a
    revision are not published, so they are not listed. Soonest date first; raises Forbidden off
    the desk.
    """
    require_desk(viewer)
    candidates = session.scalars(
        select(Record)
        .where(Record.disclosure_date.is_not(None), Record.disclosure_date <= today)
        .where(Record.status != "withdrawn")
        .order_by(Record.disclosure_date, Record.id)
    )
    due = []
    for record in candidates:
        restricted = [t for t in tier_targets(record) if t.current != policy.PUBLIC and not t.pending]
        if restricted:
            due.append(DisclosureDue(record, restricted))
    return due
