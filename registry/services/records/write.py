"""The only path that creates a record or saves a change to it: forms, the import and the seed.

Form data arrive as the JSON shape, already validated by ``schemas.load_record``; files arrive
as ``FileEntry`` values naming either a file already attached or an upload already stored.
The Party states the tiers of its records, never below one the Secretariat set; the
Secretariat's own edit of a record never lowers a tier (``tiers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from sqlalchemy import or_, select

from schemas import load_record

from ... import policy, search, storage
from ...db import after_commit, session
from ...errors import Forbidden, Invalid
from ...models import (
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
from ...policy import Viewer
from .. import audit
from . import tiers
from .history import keep_version
from .read import require
from .shape import CORE, dumped, file_shape

# An upload's signed token came back after its file was saved (a double submit, Back and resubmit).
ALREADY_SAVED = _l(
    "This upload was already saved with a record (the form was probably sent twice). "
    "Upload the file again to add it here."
)


@dataclass
class FileEntry:
    """One file of a record as a form states it: an attached file (``file_id``) or a new upload."""

    language: str
    tier: str
    title: str = ""
    file_id: str | None = None
    upload: Any = None  # an ``uploads.Staged``: stored, hashed and type-checked already


def check_references(viewer: Viewer, data: dict[str, Any], record: Record | None = None) -> dict[str, Taxon]:
    """Party, taxa and network members must exist (and be visible, unless ``record`` has them
    already); raises Invalid naming the field.

    Members are looked up in one query that holds the policy's rule, so a hidden centre costs what
    a missing one does and is refused with the same words.
    """
    errors: dict[str, list[str]] = {}
    if data["party"] and session.get(Party, data["party"]) is None:
        errors["party"] = [_l("Not a CITES Party in the registry.")]
    names = list(dict.fromkeys(data["taxa"]))
    taxa = {t.name: t for t in session.scalars(select(Taxon).where(Taxon.name.in_(names)))} if names else {}
    unknown = [n for n in names if n not in taxa]
    if unknown:
        errors["taxa"] = [_l("Not in the taxon checklist: %(n)s.", n=", ".join(unknown))]
    kept = {m.id for m in policy.related(record).get("members", [])} if record is not None else set()
    wanted = [m for m in dict.fromkeys(data["details"].get("members", [])) if looks_like_id(m, "r")]
    usable = policy.visible_clause(viewer)
    if kept:
        usable = or_(usable, RescueCentre.id.in_(kept))
    query = select(RescueCentre.id).where(RescueCentre.id.in_(wanted), usable)
    found = set(session.scalars(query)) if wanted else set()
    for member in data["details"].get("members", []):
        if member not in found:
            errors.setdefault("details.members", []).append(_l("%(n)s is not a rescue centre.", n=member))
    if errors:
        raise Invalid(errors)
    return taxa


def keep_hidden_related(viewer: Viewer, record: Record, data: dict[str, Any]) -> None:
    """Keep in ``data`` the related records of ``record`` that ``viewer`` may not see (and so could
    neither be shown nor send back): a Party's edit of its network never drops another Party's
    confidential member, nor learns that it is there."""
    for name, others in policy.related(record).items():
        hidden = [other.id for other in others if not policy.can(viewer, "view", other)]
        if hidden:
            posted = data["details"].get(name, [])
            data["details"][name] = [*posted, *(i for i in hidden if i not in posted)]


def apply(record: Record, data: dict[str, Any], taxa: dict[str, Taxon]) -> None:
    """Copy validated data onto ``record`` (type and Party are fixed once the record exists)."""
    for name in CORE:
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


def new_file(entry: FileEntry, pending: bool) -> File:
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


def check_files(record: Record | None, entries: list[FileEntry]) -> None:
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
            errors.append(_l("%(n)s is not a file of this record.", n=entry.file_id))
    listed = [entry.file_id or entry.upload.stored_name for entry in entries]
    if len(set(listed)) != len(listed):
        errors.append(_l("The same file is listed twice."))
    if errors:
        raise Invalid({"files": list(dict.fromkeys(errors))})


def sync_files(
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
            file = new_file(entry, pending=False)
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
    in_history = listed_by_versions(record) if removed else set()
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
            remove_after_commit(files_dir, file.stored_name)
    return removed


def listed_by_versions(record: Record) -> set[str]:
    """The ids of the files that some kept version of ``record`` lists."""
    payloads = session.scalars(select(RecordVersion.payload).where(RecordVersion.record_id == record.id))
    return {f["id"] for payload in payloads for f in payload.get("files", []) if f.get("id")}


def remove_after_commit(files_dir: Any, stored_name: str) -> None:
    """Delete a stored file once the change that dropped it is durable (never if it rolls back)."""
    after_commit(lambda: storage.remove(files_dir, stored_name))


def create_record(viewer: Viewer, raw: dict[str, Any], files: list[FileEntry], files_dir: Any) -> Record:
    """Create a draft from form data in the JSON shape. Raises Invalid (messages by field) or Forbidden."""
    try:
        data = load_record({**raw, "status": None})
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]
    return create(viewer, data, files, files_dir)


def create(viewer: Viewer, data: dict[str, Any], files: list[FileEntry], files_dir: Any) -> Record:
    """Create a draft from data ``schemas.load_record`` returned: every record starts here, whether
    a form, the import or the seed brings it. Raises Invalid (messages by field) or Forbidden."""
    if not policy.can(viewer, "create", data["party"]):
        raise Forbidden("create")
    taxa = check_references(viewer, data)
    record = MODEL_FOR_TYPE[data["type"]](type=data["type"], party_iso=data["party"], status="draft")
    apply(record, data, taxa)
    record.peak_tier = record.tier
    check_files(None, files)
    session.add(record)
    sync_files(record, files, files_dir)
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
    require(viewer, "edit", record)
    try:
        data = load_record({**raw, "type": record.type, "party": record.party_iso, "status": None})
    except ValidationError as exc:
        raise Invalid(exc.messages) from exc  # type: ignore[arg-type]
    return save(viewer, record, data, files, files_dir)


def save(
    viewer: Viewer, record: Record, data: dict[str, Any], files: list[FileEntry], files_dir: Any
) -> Record:
    """Save data ``schemas.load_record`` returned for ``record`` (its type and Party) as ``save_record``
    does. Raises NotFound, Forbidden or Invalid."""
    require(viewer, "edit", record)
    if (data["type"], data["party"]) != (record.type, record.party_iso):
        raise Invalid({"type": [_l("A record keeps its type and its Party.")]})
    taxa = check_references(viewer, data, record)
    keep_hidden_related(viewer, record, data)
    check_files(record, files)
    before = tiers.stated_tiers(record)
    attached = [(e.file_id, e.tier) for e in files if e.upload is None]
    stated = tiers.tiers_of(record, data["confidentiality"], attached)
    secretariat = policy.can(viewer, "publish", record)
    if not secretariat:
        tiers.refuse_below_floors(record, stated)
    if record.status == "published" and not secretariat:
        save_revision(record, data, files, files_dir)
        audit.log(viewer, "edit", record=record, revision=True)
        # Only the uploads the revision adds change now; the rest changes when it is published.
        changed = tiers.tier_changes(before, tiers.stated_tiers(record))
        tiers.log_tier_changes(viewer, record, changed, reason="")
        return record
    if secretariat:
        # The Party states its tiers; the Secretariat raises them, and lowers one only on purpose.
        tiers.refuse_lowering(tiers.tier_changes(before, stated))
    apply(record, data, taxa)
    # Correcting the live record leaves the Party's revision, and the uploads it waits with, alone.
    sync_files(record, files, files_dir, keep_pending=True)
    changes = tiers.tier_changes(before, tiers.stated_tiers(record))
    if secretariat:
        for change in changes:
            tiers.remember_secretariat_tier(record, change.kind, change.key, change.new)
    if record.status == "published":
        # The Secretariat's own correction of a published record: a new version at once.
        record.peak_tier = policy.strictest(record.peak_tier, record.tier)
        keep_version(viewer, record)
        search.enqueue(record.id)
    else:
        record.peak_tier = record.tier if record.published_at is None else record.peak_tier
    session.flush()
    audit.log(viewer, "edit", record=record)
    tiers.log_tier_changes(viewer, record, changes, reason="")
    return record


def save_revision(record: Record, data: dict[str, Any], files: list[FileEntry], files_dir: Any) -> None:
    """Keep the Party's next version of a published record beside the live one."""
    by_id = {f.id: f for f in record.files}
    shapes: list[dict[str, Any]] = []
    new_files: list[File] = []
    for entry in files:
        if entry.upload is not None:
            file = new_file(entry, pending=True)
            record.files.append(file)
            new_files.append(file)
        else:
            file = by_id[entry.file_id]  # type: ignore[index]
            if file.pending:
                # An upload of this revision is the revision's alone: its row says what the revision says.
                file.title, file.language, file.tier = entry.title, entry.language, entry.tier
        shapes.append(
            {**file_shape(file), "title": entry.title, "language": entry.language, "tier": entry.tier}
        )
    if new_files:
        session.flush()
        for shape, file in zip([s for s in shapes if s["id"] is None], new_files, strict=True):
            shape["id"] = file.id
    listed = {s["id"] for s in shapes}
    for file in [f for f in record.files if f.pending and f.id not in listed]:
        # A pending upload the Party dropped again before the revision was published.
        record.files.remove(file)
        remove_after_commit(files_dir, file.stored_name)
    record.revision = {**dumped(data), "files": shapes}
    if record.revision_status not in policy.PARTY_EDITABLE_STATUSES:
        record.revision_status = "draft"
