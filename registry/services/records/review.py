"""The review of submissions: draft → submitted → published, returned or withdrawn.

Every step writes the audit trail, each tier change included, and after commit tells the people
concerned by e-mail (``services.notices``). A revision that makes a part more open than it is
published, or than the Secretariat set it, is published only with the Secretariat's reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from schemas import load_record

from ... import policy, search
from ...db import session
from ...errors import Forbidden, Invalid
from ...models import Record
from ...policy import Viewer
from ...vocab import Status
from .. import audit, notices
from . import tiers
from .history import keep_version, latest_version_number
from .read import require
from .write import FileEntry, apply, check_references, sync_files


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def submit(viewer: Viewer, record: Record) -> Record:
    """Send a draft, returned record or revision to the Secretariat. Raises NotFound or Forbidden."""
    require(viewer, "submit", record)
    if record.status == Status.PUBLISHED:
        record.revision_status = Status.SUBMITTED
    else:
        record.status = Status.SUBMITTED
    record.submitted_at = now()
    session.flush()
    audit.log(viewer, "submit", record=record, revision=record.status == Status.PUBLISHED)
    notices.submitted(record)
    return record


def under_review(record: Record) -> bool:
    """Whether ``record`` (or its revision) waits for the Secretariat's decision."""
    return record.status == Status.SUBMITTED or record.revision_status == Status.SUBMITTED


def return_to_party(viewer: Viewer, record: Record, comment: str) -> Record:
    """Return a submission to its Party with a comment. Raises NotFound, Forbidden or Invalid."""
    require(viewer, "review", record)
    comment = (comment or "").strip()
    if not comment:
        raise Invalid({"comment": [_l("Say what the Party should change.")]})
    if len(comment) > 5000:
        raise Invalid({"comment": [_l("Must be at most %(n)s characters long.", n=5000)]})
    if not under_review(record):
        raise Invalid({"status": [_l("Only a submitted record can be returned.")]})
    if record.revision_status == Status.SUBMITTED:
        record.revision_status = Status.RETURNED
    else:
        record.status = Status.RETURNED
    record.review_comment = comment
    session.flush()
    audit.log(viewer, "return", record=record, comment=comment)
    notices.returned(record)
    return record


def publish(viewer: Viewer, record: Record, files_dir: Any, reason: str = "", notify: bool = True) -> Record:
    """Publish a submission (a new record or a revision) and keep the version.

    A revision that makes a part of the published record more open (``revision_changes``) is
    published only with the Secretariat's ``reason``, which the trail keeps with each tier change.
    Raises NotFound, Forbidden, or Invalid (not under review, no reason for a lowering, a revision
    that no longer passes the checks).
    """
    require(viewer, "publish", record)
    if not under_review(record):
        raise Invalid({"status": [_l("Only a submitted record can be published.")]})
    before = tiers.stated_tiers(record)
    reason = (reason or "").strip()
    lowers = tiers.publish_lowers(record)
    if lowers and (not reason or len(reason) > 2000):
        raise Invalid(
            {
                "reason": [
                    _l(
                        "This version makes parts more open than they are published or than the Secretariat"
                        " set them: give the reason (at most 2000 characters)."
                    )
                ]
            }
        )
    if record.revision_status == Status.SUBMITTED:
        revision = dict(record.revision or {})
        shapes = revision.pop("files", [])
        try:
            data = load_record({**revision, "status": None})
        except ValidationError as exc:
            # A revision saved under older rules: the Party must correct it first.
            raise Invalid(
                {"revision": [_l("This version no longer passes the checks; return it to the Party.")]}
            ) from exc
        apply(record, data, check_references(viewer, data))
        # A file the Secretariat removed from the live record since the revision was saved stays removed.
        attached = {f.id for f in record.files}
        sync_files(
            record,
            [
                FileEntry(language=s["language"], tier=s["tier"], title=s["title"], file_id=s["id"])
                for s in shapes
                if s["id"] in attached
            ],
            files_dir,
        )
        record.revision, record.revision_status = None, None
    record.status = Status.PUBLISHED
    record.published_at = now()
    record.review_comment = ""
    record.peak_tier = policy.strictest(record.peak_tier, record.tier)
    keep_version(viewer, record)
    changes = tiers.tier_changes(before, tiers.stated_tiers(record))
    for change in lowers:
        # Opened below the tier the Secretariat set, on purpose, with its reason: that is what it sets now.
        floor = tiers.secretariat_tier(record, change.kind, change.key)
        if floor and policy.rank(change.new) < policy.rank(floor):
            tiers.remember_secretariat_tier(record, change.kind, change.key, change.new)
    search.enqueue(record.id)
    session.flush()
    audit.log(viewer, "publish", record=record, version=latest_version_number(record))
    tiers.log_tier_changes(viewer, record, changes, reason=reason or "published revision")
    # A part already stated more open than the Secretariat set it opens now too, though its stated
    # tier does not change here: it is in the trail all the same.
    stated_changes = {(c.kind, c.key) for c in changes}
    tiers.log_tier_changes(
        viewer, record, [c for c in lowers if (c.kind, c.key) not in stated_changes], reason=reason
    )
    if notify:
        notices.published(record)
    return record


def take_in(viewer: Viewer, record: Record, status: str, files_dir: Any) -> Record:
    """Bring a record just created by an import (a draft) to the ``status`` its file states.

    Each status is reached by the step that reaches it on the desk, trail included, so an imported
    published record has its kept version; no one is e-mailed, as no one submitted or decided
    anything. Only the Secretariat takes in anything but a draft. Raises Forbidden.
    """
    if status == Status.DRAFT:
        return record
    if not policy.can(viewer, "review", record):
        raise Forbidden("review")
    if status == Status.PUBLISHED:
        record.status = Status.SUBMITTED
        return publish(viewer, record, files_dir, notify=False)
    record.status = status
    if status == Status.SUBMITTED:
        record.submitted_at = now()
    session.flush()
    steps = {Status.SUBMITTED: "submit", Status.RETURNED: "return", Status.WITHDRAWN: "withdraw"}
    audit.log(viewer, steps[status], record=record)
    return record


def withdraw(viewer: Viewer, record: Record, reason: str = "") -> Record:
    """Withdraw a record: it leaves every public page and index. Raises NotFound or Forbidden."""
    require(viewer, "withdraw", record)
    was_published = record.status == Status.PUBLISHED
    record.status = Status.WITHDRAWN
    record.revision_status = None
    session.flush()
    if was_published:
        search.enqueue(record.id)
    audit.log(viewer, "withdraw", record=record, reason=(reason or "").strip()[:5000])
    return record
