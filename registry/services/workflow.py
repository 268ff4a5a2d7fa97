"""Submissions and their review: draft → submitted → published, returned or withdrawn.

A Party works on its own records: a new record is a draft until it is submitted; a published
record stays live while the Party prepares its next version (``Record.revision``), which goes
through the same review. Every publication keeps a ``RecordVersion``, and a file that a kept
version lists stays stored (``File.retired``) when the record drops it. Every step writes the
audit trail, each tier change included, and after commit tells the people concerned by e-mail
(``services.notices``).

The Party states the tiers of its records, never below one the Secretariat set. The Secretariat
raises them at will; it makes a part more open only on purpose, with a reason: on the desk
(``services.tiers.change_tier``), or by publishing a version that makes a part more open than it
is published or than the Secretariat set it. Its own edit of a record never lowers a tier.

Form data arrive as the JSON shape, already validated by ``schemas.load_record``; files arrive
as ``FileEntry`` values naming either a file already attached or an upload already stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import func, or_, select

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
    looks_like_id,
)
from ..policy import Viewer
from . import audit, notices, tiers

# Core attributes copied from the JSON shape onto a record, and back.
_CORE = ("title", "summary", "language", "scope", "issuing_bodies", "year", "date")
# An upload's signed token came back after its file was saved (a double submit, Back and resubmit).
ALREADY_SAVED = (
    "This upload was already saved with a record (the form was probably sent twice). "
    "Upload the file again to add it here."
)


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
            "field_tiers": tiers.every_field_tier(record.type, record.field_tiers),
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
    confidentiality = data["confidentiality"]
    confidentiality = {
        **confidentiality,
        "field_tiers": tiers.every_field_tier(data["type"], confidentiality.get("field_tiers")),
    }
    shape = RECORD_SCHEMAS[data["type"]]().dump(
        {**data, "party": data.get("party"), "status": None, "files": [], "confidentiality": confidentiality}
    )
    shape.pop("files", None)
    shape.pop("status", None)
    return shape


# Checks shared by create and save -----------------------------------------------------------


def _check_references(
    viewer: Viewer, data: dict[str, Any], record: Record | None = None
) -> dict[str, Taxon]:
    """Party, taxa and network members must exist (and be visible, unless ``record`` has them
    already); raises Invalid naming the field.

    Members are looked up in one query that holds the policy's rule, so a hidden centre costs what
    a missing one does and is refused with the same words.
    """
    errors: dict[str, list[str]] = {}
    if data["party"] and session.get(Party, data["party"]) is None:
        errors["party"] = ["Not a CITES Party in the registry."]
    names = list(dict.fromkeys(data["taxa"]))
    taxa = {t.name: t for t in session.scalars(select(Taxon).where(Taxon.name.in_(names)))} if names else {}
    unknown = [n for n in names if n not in taxa]
    if unknown:
        errors["taxa"] = [f"Not in the taxon checklist: {', '.join(unknown)}."]
    kept = {m.id for m in policy.related(record).get("members", [])} if record is not None else set()
    wanted = [m for m in dict.fromkeys(data["details"].get("members", [])) if looks_like_id(m, "r")]
    usable = policy.visible_clause(viewer)
    if kept:
        usable = or_(usable, RescueCentre.id.in_(kept))
    query = select(RescueCentre.id).where(RescueCentre.id.in_(wanted), usable)
    found = set(session.scalars(query)) if wanted else set()
    for member in data["details"].get("members", []):
        if member not in found:
            errors.setdefault("details.members", []).append(f"{member} is not a rescue centre.")
    if errors:
        raise Invalid(errors)
    return taxa


def _keep_hidden_related(viewer: Viewer, record: Record, data: dict[str, Any]) -> None:
    """Keep in ``data`` the related records of ``record`` that ``viewer`` may not see (and so could
    neither be shown nor send back): a Party's edit of its network never drops another Party's
    confidential member, nor learns that it is there."""
    for name, others in policy.related(record).items():
        hidden = [other.id for other in others if not policy.can(viewer, "view", other)]
        if hidden:
            posted = data["details"].get(name, [])
            data["details"][name] = [*posted, *(i for i in hidden if i not in posted)]


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
    # The text was extracted when the upload was accepted, before the request wrote anything: never
    # here, inside the transaction, where a slow file would hold the database's write lock.
    extracted = staged.text_result
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
        text=extracted.text,
        text_error=extracted.error,
    )


def _check_files(record: Record | None, entries: list[FileEntry]) -> None:
    """Each entry names a file of ``record`` or an upload that no file row holds yet, and none twice.

    An upload this record already holds (its form sent again) becomes that file; one that another
    record holds is refused, as two rows must never share one stored file. Raises Invalid.
    """
    known = {f.id for f in record.files} if record is not None else set()
    names = [entry.upload.stored_name for entry in entries if entry.upload is not None]
    saved = {f.stored_name: f for f in session.scalars(select(File).where(File.stored_name.in_(names)))}
    errors: list[str] = []
    for entry in entries:
        file = saved.get(entry.upload.stored_name) if entry.upload is not None else None
        if file is not None and file.id in known:
            entry.file_id, entry.upload = file.id, None
        elif file is not None:
            errors.append(ALREADY_SAVED)
        elif entry.upload is None and entry.file_id not in known:
            errors.append(f"{entry.file_id} is not a file of this record.")
    listed = [entry.file_id or entry.upload.stored_name for entry in entries]
    if len(set(listed)) != len(listed):
        errors.append("The same file is listed twice.")
    if errors:
        raise Invalid({"files": list(dict.fromkeys(errors))})


def _sync_files(
    record: Record, entries: list[FileEntry], files_dir: Any, keep_pending: bool = False
) -> list[File]:
    """Make the record's files those of ``entries``: update kept ones, add uploads, drop the rest.

    With ``keep_pending``, unlisted uploads of the Party's pending revision stay with that revision.
    A dropped file that a kept version lists is retired (kept, bytes and all, for the history);
    any other dropped file is deleted. Returns the dropped files.
    """
    by_id = {f.id: f for f in record.files}
    kept: list[File] = []
    for entry in entries:
        if entry.upload is not None:
            file = _new_file(entry, pending=False)
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
    in_history = _listed_by_versions(record) if removed else set()
    retired = [f for f in removed if f.id in in_history]
    if retired:
        for file in retired:
            file.retired = True
        # Stored as retired and the collection reloaded without them before it is replaced: a file
        # that leaves the collection is deleted as an orphan, and these must stay.
        session.flush()
        session.expire(record, ["files"])
    record.files = kept + waiting
    for file in removed:
        if file not in retired:
            _remove_after_commit(files_dir, file.stored_name)
    return removed


def _listed_by_versions(record: Record) -> set[str]:
    """The ids of the files that some kept version of ``record`` lists."""
    payloads = session.scalars(select(RecordVersion.payload).where(RecordVersion.record_id == record.id))
    return {f["id"] for payload in payloads for f in payload.get("files", []) if f.get("id")}


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
    taxa = _check_references(viewer, data, record)
    _keep_hidden_related(viewer, record, data)
    _check_files(record, files)
    before = tiers.stated_tiers(record)
    attached = [(e.file_id, e.tier) for e in files if e.upload is None]
    stated = tiers.tiers_of(record, data["confidentiality"], attached)
    secretariat = policy.can(viewer, "publish", record)
    if not secretariat:
        tiers.refuse_below_floors(record, stated)
    if record.status == "published" and not secretariat:
        _save_revision(record, data, files, files_dir)
        audit.log(viewer, "edit", record=record, revision=True)
        # Only the uploads the revision adds change now; the rest changes when it is published.
        changed = tiers.tier_changes(before, tiers.stated_tiers(record))
        tiers.log_tier_changes(viewer, record, changed, reason="")
        return record
    if secretariat:
        # The Party states its tiers; the Secretariat raises them, and lowers one only on purpose.
        tiers.refuse_lowering(tiers.tier_changes(before, stated))
    _apply(record, data, taxa)
    # Correcting the live record leaves the Party's revision, and the uploads it waits with, alone.
    _sync_files(record, files, files_dir, keep_pending=True)
    changes = tiers.tier_changes(before, tiers.stated_tiers(record))
    if secretariat:
        for change in changes:
            tiers.remember_secretariat_tier(record, change.kind, change.key, change.new)
    if record.status == "published":
        # The Secretariat's own correction of a published record: a new version at once.
        record.peak_tier = policy.strictest(record.peak_tier, record.tier)
        _keep_version(viewer, record)
        search.enqueue(record.id)
    else:
        record.peak_tier = record.tier if record.published_at is None else record.peak_tier
    session.flush()
    audit.log(viewer, "edit", record=record)
    tiers.log_tier_changes(viewer, record, changes, reason="")
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
            if file.pending:
                # An upload of this revision is the revision's alone: its row says what the revision says.
                file.title, file.language, file.tier = entry.title, entry.language, entry.tier
        shapes.append(
            {**_file_shape(file), "title": entry.title, "language": entry.language, "tier": entry.tier}
        )
    if new_files:
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


def publish(viewer: Viewer, record: Record, files_dir: Any, reason: str = "") -> Record:
    """Publish a submission (a new record or a revision) and keep the version.

    A revision that makes a part of the published record more open (``revision_changes``) is
    published only with the Secretariat's ``reason``, which the trail keeps with each tier change.
    Raises NotFound, Forbidden, or Invalid (not under review, no reason for a lowering, a revision
    that no longer passes the checks).
    """
    _require(viewer, "publish", record)
    if not under_review(record):
        raise Invalid({"status": ["Only a submitted record can be published."]})
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
    changes = tiers.tier_changes(before, tiers.stated_tiers(record))
    for change in lowers:
        # Opened below the tier the Secretariat set, on purpose, with its reason: that is what it sets now.
        floor = tiers.secretariat_tier(record, change.kind, change.key)
        if floor and policy.rank(change.new) < policy.rank(floor):
            tiers.remember_secretariat_tier(record, change.kind, change.key, change.new)
    search.enqueue(record.id)
    session.flush()
    audit.log(viewer, "publish", record=record, version=_latest_version_number(record))
    tiers.log_tier_changes(viewer, record, changes, reason=reason or "published revision")
    # A part already stated more open than the Secretariat set it opens now too, though its stated
    # tier does not change here: it is in the trail all the same.
    stated_changes = {(c.kind, c.key) for c in changes}
    tiers.log_tier_changes(
        viewer, record, [c for c in lowers if (c.kind, c.key) not in stated_changes], reason=reason
    )
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
        search.enqueue(record.id)
    audit.log(viewer, "withdraw", record=record, reason=(reason or "").strip()[:5000])
    return record


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


def _require(viewer: Viewer, action: str, record: Record) -> None:
    if not policy.can(viewer, "view", record):
        raise NotFound(record.id)
    if not policy.can(viewer, action, record):
        raise Forbidden(action)


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
