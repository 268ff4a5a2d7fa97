"""Calls for information: the Secretariat's campaigns, such as CITES Notification 2021/008.

A Party's answer to a call is read from its records, never entered by hand: it has answered
when something it submitted since the call opened waits for review or was published since then,
is working on it when it has a draft or returned record touched since then, and has not started
otherwise. A submission returned to the Party is its work in progress again, not an answer: the
Secretariat asked for changes, so the Party is still reminded.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import and_, or_, select

from schemas.calls import CallSchema

from .. import policy
from ..db import session
from ..errors import Forbidden, Invalid, NotFound
from ..models import Call, Party, Record
from ..policy import Viewer
from ..vocab import REGIONS
from . import audit, notices

# A Party's answer to a call, from done to not begun.
STATUSES = ("submitted", "in_progress", "not_started")
# Call ids are 32-bit integers in the database: anything larger is simply not a call.
_MAX_ID = 2**31 - 1


@dataclass
class RegionStatuses:
    """The Parties of one CITES region with their answers to a call, and how many gave each."""

    region: str
    parties: list[tuple[Party, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _require(viewer: Viewer | None) -> None:
    if not policy.can(viewer, "review_desk"):
        raise Forbidden("review_desk")


def create_call(viewer: Viewer | None, data: Mapping[str, Any]) -> Call:
    """Create a call from form or JSON data.

    Raises Forbidden for anyone but the Secretariat, Invalid (messages by field) for bad data,
    a deadline before the opening date or a Notification that already has a call.
    """
    _require(viewer)
    try:
        clean = CallSchema().load(dict(data))
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]
    if session.scalar(select(Call.id).where(Call.notification == clean["notification"])) is not None:
        raise Invalid({"notification": [_l("There is already a call for this Notification.")]})
    call = Call(**clean)
    session.add(call)
    session.flush()
    audit.log(viewer, "call_created", call=call.id, notification=call.notification)
    return call


def list_calls(viewer: Viewer | None) -> list[Call]:
    """Every call, the latest opened first. Raises Forbidden for anyone but the Secretariat."""
    _require(viewer)
    return list(session.scalars(select(Call).order_by(Call.opens_on.desc(), Call.id.desc())))


def get_call(viewer: Viewer | None, call_id: int) -> Call:
    """The call ``call_id``. Raises Forbidden for anyone but the Secretariat, NotFound when missing."""
    _require(viewer)
    call = session.get(Call, call_id) if 0 < call_id <= _MAX_ID else None
    if call is None:
        raise NotFound(str(call_id))
    return call


def party_statuses(viewer: Viewer | None, call: Call) -> list[tuple[Party, str]]:
    """Every Party with its answer to ``call`` (one of ``STATUSES``), by ISO code.

    ``submitted``: a record (or revision) of the Party submitted since the call opened waits for
    review, or a record was published since then (a withdrawn one no longer counts);
    ``in_progress``: it has a draft or returned record (or revision) created or changed since then;
    ``not_started``: neither. Raises Forbidden for anyone but the Secretariat.
    """
    _require(viewer)
    since = dt.datetime.combine(call.opens_on, dt.time.min)
    waiting = or_(Record.status == "submitted", Record.revision_status == "submitted")
    answered = set(
        session.scalars(
            select(Record.party_iso)
            .where(Record.party_iso.is_not(None))
            .where(
                or_(
                    and_(waiting, Record.submitted_at >= since),
                    and_(Record.status == "published", Record.published_at >= since),
                )
            )
            .distinct()
        )
    )
    working = set(
        session.scalars(
            select(Record.party_iso)
            .where(Record.party_iso.is_not(None))
            .where(
                or_(
                    Record.status.in_(policy.PARTY_EDITABLE_STATUSES),
                    Record.revision_status.in_(policy.PARTY_EDITABLE_STATUSES),
                )
            )
            .where(or_(Record.created_at >= since, Record.updated_at >= since))
            .distinct()
        )
    )
    parties = session.scalars(select(Party).order_by(Party.iso))
    return [
        (p, "submitted" if p.iso in answered else "in_progress" if p.iso in working else "not_started")
        for p in parties
    ]


def by_region(statuses: list[tuple[Party, str]]) -> list[RegionStatuses]:
    """``statuses`` grouped by CITES region, in the regions' usual order, with counts per status."""
    groups = {region: RegionStatuses(region) for region in REGIONS}
    for party, status in statuses:
        group = groups.setdefault(party.region, RegionStatuses(party.region))
        group.parties.append((party, status))
        group.counts[status] += 1
    return [g for g in groups.values() if g.parties]


def remind(viewer: Viewer | None, call: Call) -> int:
    """E-mail the focal points of every Party that has not answered ``call``; return how many e-mails.

    The e-mails go out after commit; the trail records which Parties were reminded.
    Raises Forbidden for anyone but the Secretariat.
    """
    _require(viewer)
    reminded: list[str] = []
    sent = 0
    for party, status in party_statuses(viewer, call):
        if status == "submitted":
            continue
        count = notices.reminder(call, party.iso)
        if count:
            reminded.append(party.iso)
            sent += count
    audit.log(viewer, "reminder_sent", parties=reminded, call=call.id, emails=sent)
    return sent


def count_total(statuses: list[tuple[Party, str]]) -> Counter[str]:
    """How many Parties gave each answer."""
    return Counter(status for _party, status in statuses)
