"""Submissions and their review: draft → submitted → published, returned or withdrawn.

A Party works on its own records: a new record is a draft until it is submitted; a published
record stays live while the Party prepares its next version (``Record.revision``), which goes
through the same review. Every publication keeps a ``RecordVersion``. Every step writes the
audit trail and, after commit, tells the people concerned by e-mail (``services.notices``).

Form data arrive as the JSON shape, already validated by ``schemas.load_record``; files arrive
as ``FileEntry`` values naming either a file already attached or an upload already stored.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import func, select

from schemas import RECORD_SCHEMAS, load_record

from .. import policy, search, storage
from ..db import after_commit, session
from ..errors import Forbidden, Invalid, NotFound
from ..models import (
    MODEL_FOR_TYPE,
    File,
    Party,
    Record,
    RecordTranslation,
    RecordVersion,
    RescueCentre,
    Taxon,
)
from ..policy import Viewer
from . import audit, notices
from .imports import extract_texts

# Core attributes copied from the JSON shape onto a record, and back.
_CORE = ("title", "summary", "language", "scope", "issuing_bodies", "year", "date")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class FileEntry:
    """One file of a record as a form states it: an attached file (``file_id``) or a new upload."""

    language: str
    tier: str
    title: str = ""
    file_id: str | None = None
    upload: Any = None  # an ``uploads.Staged``: stored, hashed and type-checked already


# Reading a record back into the JSON shape -------------------------------------------------------


def record_shape(record: Record) -> dict[str, Any]:
    """The record's own content in the JSON shape (every field, unprojected; for its keepers only)."""
    details = record.details()
    if "members" in details:
        details["members"] = [m.id for m in details["members"]]
    data = {
        "type": record.type,
        **{name: getattr(record, name) for name in _CORE},
        "party": record.party_iso,
        "region": record.region,
        "translations": [
            {"language": t.language, "title": t.title, "summary": t.summary} for t in record.translations
        ],
        "taxa": [t.name for t in record.taxa],
        "confidentiality": {
            "level": record.tier,
            "rule": record.confidentiality_rule,
            "justification": record.confidentiality_justification,
            "disclosure_date": record.disclosure_date,
            "field_tiers": dict(record.field_tiers or {}),
        },
        "details": details,
    }
    shape = RECORD_SCHEMAS[record.type]().dump(data)
    shape["files"] = [_file_shape(f) for f in record.files if not f.pending]
    return shape


def _file_shape(file: File) -> dict[str, Any]:
    return {
        "id": file.id,
        "title": file.title,
        "language": file.language,
        "tier": file.tier,
        "original_name": file.original_name,
        "size": file.size,
    }


def working_shape(record: Record) -> dict[str, Any]:
    """What the Party is working on: the revision of a published record if there is one, else the record."""
    if record.revision is not None:
        return record.revision
    return record_shape(record)


def _dumped(data: dict[str, Any]) -> dict[str, Any]:
    """Validated data (dates as objects) back in the JSON shape, as stored in a revision."""
    shape = RECORD_SCHEMAS[data["type"]]().dump(
        {**data, "party": data.get("party"), "status": None, "files": []}
    )
    shape.pop("files", None)
    shape.pop("status", None)
    return shape


# Checks shared by create and save -----------------------------------------------------------


def _check_references(viewer: Viewer, data: dict[str, Any]) -> dict[str, Taxon]:
    """Party, taxa and network members must exist (and be visible); raises Invalid naming the field."""
    errors: dict[str, list[str]] = {}
    if data["party"] and session.get(Party, data["party"]) is None:
        errors["party"] = ["Not a CITES Party in the registry."]
    names = list(dict.fromkeys(data["taxa"]))
    taxa = {t.name: t for t in session.scalars(select(Taxon).where(Taxon.name.in_(names)))} if names else {}
    unknown = [n for n in names if n not in taxa]
    if unknown:
        errors["taxa"] = [f"Not in the taxon checklist: {', '.join(unknown)}."]
    for member in data["details"].get("members", []):
        centre = session.get(Record, member) if member.startswith("r") else None
        if not isinstance(centre, RescueCentre) or not policy.can(viewer, "view", centre):
            errors.setdefault("details.members", []).append(f"{member} is not a rescue centre.")
    if errors:
        raise Invalid(errors)
    return taxa


def _apply(record: Record, data: dict[str, Any], taxa: dict[str, Taxon]) -> None:
    """Copy validated data onto ``record`` (type and Party are fixed once the record exists)."""
    for name in _CORE:
        setattr(record, name, data[name])
    party = session.get(Party, record.party_iso) if record.party_iso else None
    record.region = party.region if party else data["region"]
    confidentiality = data["confidentiality"]
    record.tier = confidentiality.get("level") or policy.DEFAULT_RECORD_TIER.get(record.type, policy.PUBLIC)
    record.confidentiality_rule = confidentiality.get("rule", "")
    record.confidentiality_justification = confidentiality.get("justification", "")
    record.disclosure_date = confidentiality.get("disclosure_date")
    record.field_tiers = dict(confidentiality.get("field_tiers", {}))
    details = data["details"]
    for name in record.DETAIL_FIELDS:
        if name == "members":
            record.members = [session.get(Record, m) for m in details.get("members", [])]  # type: ignore[attr-defined]
        elif name in details:
            setattr(record, name, details[name])
    wanted = {t["language"]: t for t in data["translations"]}
    record.translations = [
        RecordTranslation(language=lang, title=t["title"], summary=t["summary"]) for lang, t in wanted.items()
    ]
    record.taxa = [taxa[name] for name in dict.fromkeys(data["taxa"])]


def _new_file(entry: FileEntry, pending: bool) -> File:
    staged = entry.upload
    return File(
        title=entry.title,
        language=entry.language,
        tier=entry.tier,
        size=staged.size,
        sha256=staged.sha256,
        media_type=staged.media_type,
        original_name=staged.original_name,
        stored_name=staged.stored_name,
        pending=pending,
    )


def _check_files(record: Record | None, entries: list[FileEntry]) -> None:
    known = {f.id for f in record.files} if record is not None else set()
    errors = [
        f"{entry.file_id} is not a file of this record."
        for entry in entries
        if entry.upload is None and entry.file_id not in known
    ]
    if errors:
        raise Invalid({"files": errors})


def _sync_files(
    record: Record, entries: list[FileEntry], files_dir: Any, keep_pending: bool = False
) -> list[File]:
    """Make the record's files those of ``entries``: update kept ones, add uploads, drop the rest.

    With ``keep_pending``, unlisted uploads of the Party's pending revision stay with that revision.
    """
    by_id = {f.id: f for f in record.files}
    kept: list[File] = []
    added: list[File] = []
    for entry in entries:
        if entry.upload is not None:
            file = _new_file(entry, pending=False)
            added.append(file)
        else:
            file = by_id[entry.file_id]  # type: ignore[index]
            file.title, file.language, file.tier, file.pending = (
                entry.title,
                entry.language,
                entry.tier,
                False,
            )
        kept.append(file)
    waiting = [f for f in record.files if keep_pending and f.pending and f not in kept]
    removed = [f for f in record.files if f not in kept and f not in waiting]
    record.files = kept + waiting
    if added:
        extract_texts(files_dir, added)
    for file in removed:
        _remove_after_commit(files_dir, file.stored_name)
    return removed


def _remove_after_commit(files_dir: Any, stored_name: str) -> None:
    """Delete a stored file once the change that dropped it is durable (never if it rolls back)."""
    after_commit(lambda: storage.remove(files_dir, stored_name))


# The workflow ---------------------------------------------------------------------------------


def create_record(viewer: Viewer, raw: dict[str, Any], files: list[FileEntry], files_dir: Any) -> Record:
    """Create a draft from form data in the JSON shape. Raises Invalid (messages by field) or Forbidden."""
    try:
        data = load_record({**raw, "status": None})
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]
    if not policy.can(viewer, "create", data["party"]):
        raise Forbidden("create")
    taxa = _check_references(viewer, data)
    record = MODEL_FOR_TYPE[data["type"]](type=data["type"], party_iso=data["party"], status="draft")
    _apply(record, data, taxa)
    record.peak_tier = record.tier
    _check_files(None, files)
    session.add(record)
    _sync_files(record, files, files_dir)
    session.flush()
    audit.log(viewer, "create", record=record, type=record.type, tier=record.tier)
    return record


def save_record(
    viewer: Viewer, record: Record, raw: dict[str, Any], files: list[FileEntry], files_dir: Any
) -> Record:
    """Save the Party's (or the Secretariat's) changes to ``record``.

    A draft or returned record changes in place. A published record changes in place only for the
    Secretariat; a Party's changes become the record's revision, reviewed before it replaces the
    published version. Raises NotFound, Forbidden or Invalid.
    """
    _require(viewer, "edit", record)
    try:
        data = load_record({**raw, "type": record.type, "party": record.party_iso, "status": None})
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]
    taxa = _check_references(viewer, data)
    _check_files(record, files)
    if record.status == "published" and not policy.can(viewer, "publish", record):
        _save_revision(record, data, files, files_dir)
        audit.log(viewer, "edit", record=record, revision=True)
        return record
    before = (record.tier, dict(record.field_tiers or {}))
    _apply(record, data, taxa)
    # Correcting the live record leaves the Party's revision, and the uploads it waits with, alone.
    removed = _sync_files(record, files, files_dir, keep_pending=True)
    if record.status == "published":
        # The Secretariat's own correction of a published record: a new version at once.
        record.peak_tier = policy.strictest(record.peak_tier, record.tier)
        _keep_version(viewer, record)
        search.enqueue(record.id, purge=_stricter(before, record) or bool(removed))
    else:
        record.peak_tier = record.tier if record.published_at is None else record.peak_tier
    session.flush()
    audit.log(viewer, "edit", record=record)
    _log_tier_changes(viewer, record, before, reason="")
    return record


def _save_revision(record: Record, data: dict[str, Any], files: list[FileEntry], files_dir: Any) -> None:
    """Keep the Party's next version of a published record beside the live one."""
    by_id = {f.id: f for f in record.files}
    shapes: list[dict[str, Any]] = []
    new_files: list[File] = []
    for entry in files:
        if entry.upload is not None:
            file = _new_file(entry, pending=True)
            record.files.append(file)
            new_files.append(file)
        else:
            file = by_id[entry.file_id]  # type: ignore[index]
        shapes.append(
            {**_file_shape(file), "title": entry.title, "language": entry.language, "tier": entry.tier}
        )
    if new_files:
        extract_texts(files_dir, new_files)
        session.flush()
        for shape, file in zip([s for s in shapes if s["id"] is None], new_files, strict=True):
            shape["id"] = file.id
    listed = {s["id"] for s in shapes}
    for file in [f for f in record.files if f.pending and f.id not in listed]:
        # A pending upload the Party dropped again before the revision was published.
        record.files.remove(file)
        _remove_after_commit(files_dir, file.stored_name)
    record.revision = {**_dumped(data), "files": shapes}
    if record.revision_status not in policy.PARTY_EDITABLE_STATUSES:
        record.revision_status = "draft"


def submit(viewer: Viewer, record: Record) -> Record:
    """Send a draft, returned record or revision to the Secretariat. Raises NotFound or Forbidden."""
    _require(viewer, "submit", record)
    if record.status == "published":
        record.revision_status = "submitted"
    else:
        record.status = "submitted"
    record.submitted_at = _now()
    session.flush()
    audit.log(viewer, "submit", record=record, revision=record.status == "published")
    notices.submitted(record)
    return record


def under_review(record: Record) -> bool:
    """Whether ``record`` (or its revision) waits for the Secretariat's decision."""
    return record.status == "submitted" or record.revision_status == "submitted"


def return_to_party(viewer: Viewer, record: Record, comment: str) -> Record:
    """Return a submission to its Party with a comment. Raises NotFound, Forbidden or Invalid."""
    _require(viewer, "review", record)
    comment = (comment or "").strip()
    if not comment:
        raise Invalid({"comment": ["Say what the Party should change."]})
    if len(comment) > 5000:
        raise Invalid({"comment": ["Must be at most 5000 characters long."]})
    if not under_review(record):
        raise Invalid({"status": ["Only a submitted record can be returned."]})
    if record.revision_status == "submitted":
        record.revision_status = "returned"
    else:
        record.status = "returned"
    record.review_comment = comment
    session.flush()
    audit.log(viewer, "return", record=record, comment=comment)
    notices.returned(record)
    return record


def publish(viewer: Viewer, record: Record, files_dir: Any) -> Record:
    """Publish a submission (a new record or a revision) and keep the version. Raises as above."""
    _require(viewer, "publish", record)
    if not under_review(record):
        raise Invalid({"status": ["Only a submitted record can be published."]})
    before = (record.tier, dict(record.field_tiers or {}))
    if record.revision_status == "submitted":
        revision = dict(record.revision or {})
        shapes = revision.pop("files", [])
        try:
            data = load_record({**revision, "status": None})
        except ValidationError as exc:
            # A revision saved under older rules: the Party must correct it first.
            raise Invalid(
                {"revision": ["This version no longer passes the checks; return it to the Party."]}
            ) from exc
        _apply(record, data, _check_references(viewer, data))
        # A file the Secretariat removed from the live record since the revision was saved stays removed.
        attached = {f.id for f in record.files}
        _sync_files(
            record,
            [
                FileEntry(language=s["language"], tier=s["tier"], title=s["title"], file_id=s["id"])
                for s in shapes
                if s["id"] in attached
            ],
            files_dir,
        )
        record.revision, record.revision_status = None, None
    record.status = "published"
    record.published_at = _now()
    record.review_comment = ""
    record.peak_tier = policy.strictest(record.peak_tier, record.tier)
    _keep_version(viewer, record)
    search.enqueue(record.id, purge=_stricter(before, record))
    session.flush()
    audit.log(viewer, "publish", record=record, version=_latest_version_number(record))
    _log_tier_changes(viewer, record, before, reason="published revision")
    notices.published(record)
    return record


def withdraw(viewer: Viewer, record: Record, reason: str = "") -> Record:
    """Withdraw a record: it leaves every public page and index. Raises NotFound or Forbidden."""
    _require(viewer, "withdraw", record)
    was_published = record.status == "published"
    record.status = "withdrawn"
    record.revision_status = None
    session.flush()
    if was_published:
        search.enqueue(record.id, purge=True)
    audit.log(viewer, "withdraw", record=record, reason=(reason or "").strip()[:5000])
    return record


def raise_tier(viewer: Viewer, obj: Record | File, tier: str, reason: str, field: str | None = None) -> None:
    """Make ``obj`` (or its sensitive ``field``) stricter; it takes effect everywhere once committed.

    The Secretariat may raise a tier, never silently lower it. Raises Forbidden for anyone else,
    Invalid for an unknown tier or field, a tier that is not stricter, or a missing reason.
    """
    if not policy.can(viewer, "mark_confidential", obj):
        raise Forbidden("mark_confidential")
    if tier not in policy.allowed_tiers(policy.CONFIDENTIAL):
        raise Invalid({"tier": ["Unknown tier."]})
    reason = (reason or "").strip()
    if not reason or len(reason) > 2000:
        raise Invalid({"reason": ["Give the reason (at most 2000 characters)."]})
    record = obj if isinstance(obj, Record) else obj.record
    if field is not None:
        if not isinstance(obj, Record) or field not in policy.SENSITIVE_FIELDS.get(record.type, {}):
            raise Invalid({"field": ["This record has no such confidential field."]})
        current = policy.field_tier(record, field)
    else:
        current = policy.file_tier(obj) if isinstance(obj, File) else obj.tier
    if policy.rank(tier) <= policy.rank(current):
        raise Invalid({"tier": ["A tier can only be raised here."]})
    if field is not None:
        record.field_tiers = {**(record.field_tiers or {}), field: tier}
    else:
        obj.tier = tier
    if isinstance(obj, Record) and field is None:
        record.peak_tier = policy.strictest(record.peak_tier, tier)
    if record.revision is not None:
        # Publishing the revision the Party prepared before must not lower the tier again.
        record.revision = _raised_in_revision(record, obj, field, tier)
    search.enqueue(record.id, purge=True)
    session.flush()
    audit.log(
        viewer,
        "tier_change",
        record=record,
        file=obj if isinstance(obj, File) else None,
        field=field,
        old=current,
        new=tier,
        reason=reason,
    )


def _raised_in_revision(record: Record, obj: Record | File, field: str | None, tier: str) -> dict[str, Any]:
    """``record``'s revision with the same part (file, field group, level) at least as strict as ``tier``."""
    revision = copy.deepcopy(record.revision or {})
    if isinstance(obj, File):
        for shape in revision.get("files", []):
            if shape.get("id") == obj.id:
                shape["tier"] = policy.strictest(shape.get("tier"), tier)
        return revision
    confidentiality = revision.setdefault("confidentiality", {})
    if field is None:
        level = confidentiality.get("level") or policy.DEFAULT_RECORD_TIER.get(record.type, policy.PUBLIC)
        confidentiality["level"] = policy.strictest(level, tier)
    else:
        fields = confidentiality.setdefault("fields", {})
        fields[field] = policy.strictest(fields.get(field) or policy.DEFAULT_FIELD_TIER, tier)
    return revision


def versions(viewer: Viewer, record: Record) -> list[RecordVersion]:
    """The published versions of ``record``, newest first (its Party and the Secretariat only)."""
    _require(viewer, "see_history", record)
    return list(
        session.scalars(
            select(RecordVersion)
            .where(RecordVersion.record_id == record.id)
            .order_by(RecordVersion.number.desc())
        )
    )


def last_published(record: Record) -> dict[str, Any] | None:
    """The payload of the record's latest published version, or None if it was never published."""
    return session.scalar(
        select(RecordVersion.payload)
        .where(RecordVersion.record_id == record.id)
        .order_by(RecordVersion.number.desc())
        .limit(1)
    )


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """What differs between two JSON shapes, as (field path, old value, new value), in field order."""
    rows: list[tuple[str, Any, Any]] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and path != "files":
            for key in dict.fromkeys([*b, *a]):
                walk(f"{path}.{key}" if path else key, a.get(key), b.get(key))
        elif a != b:
            rows.append((path, a, b))

    walk("", old or {}, new)
    return rows


def disclosure_due(viewer: Viewer, today: dt.date) -> list[Record]:
    """Records whose Party allowed disclosure by ``today``: the desk reviews them with the Party."""
    if not policy.can(viewer, "review_desk"):
        raise Forbidden("review_desk")
    return list(
        session.scalars(
            select(Record)
            .where(Record.disclosure_date.is_not(None), Record.disclosure_date <= today)
            .where(Record.tier != policy.PUBLIC, Record.status != "withdrawn")
            .order_by(Record.disclosure_date)
        )
    )


def _require(viewer: Viewer, action: str, record: Record) -> None:
    if not policy.can(viewer, "view", record):
        raise NotFound(record.id)
    if not policy.can(viewer, action, record):
        raise Forbidden(action)


def _stricter(before: tuple[str, dict[str, str]], record: Record) -> bool:
    """Whether any tier of the record went up (its index must then forget the text)."""
    tier, fields = before
    if policy.rank(record.tier) > policy.rank(tier):
        return True
    return any(
        policy.rank(policy.field_tier(record, g)) > policy.rank(fields.get(g, policy.DEFAULT_FIELD_TIER))
        for g in policy.SENSITIVE_FIELDS.get(record.type, {})
    )


def _log_tier_changes(
    viewer: Viewer, record: Record, before: tuple[str, dict[str, str]], reason: str
) -> None:
    tier, fields = before
    if tier != record.tier:
        audit.log(viewer, "tier_change", record=record, field=None, old=tier, new=record.tier, reason=reason)
    for group in policy.SENSITIVE_FIELDS.get(record.type, {}):
        old = fields.get(group, policy.DEFAULT_FIELD_TIER)
        new = (record.field_tiers or {}).get(group, policy.DEFAULT_FIELD_TIER)
        if old != new:
            audit.log(viewer, "tier_change", record=record, field=group, old=old, new=new, reason=reason)


def _latest_version_number(record: Record) -> int:
    return (
        session.scalar(
            select(func.coalesce(func.max(RecordVersion.number), 0)).where(
                RecordVersion.record_id == record.id
            )
        )
        or 0
    )


def _keep_version(viewer: Viewer, record: Record) -> None:
    session.flush()
    session.add(
        RecordVersion(
            record_id=record.id,
            number=_latest_version_number(record) + 1,
            payload=record_shape(record),
            published_by=getattr(viewer, "email", "") or "",
        )
    )
