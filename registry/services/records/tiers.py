"""The tiers of a record's parts: what a record states, what changes, who may change it and how.

A record states a tier for itself, for each of its sensitive field groups and for each file. The
Party states them; the Secretariat raises them at will and makes a part more open only on purpose,
with a reason, on the review page. A tier the Secretariat set stands (``Record.tier_floors``) until
the Secretariat itself changes it: nothing a Party posts, from a fresh form or a stale tab, can make
that part more open. Every change of a part's tier is in the audit trail, one entry per part, with
the part's effective tier before and after.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from ... import policy, search
from ...db import session
from ...errors import Forbidden, Invalid
from ...labels import LABELS
from ...models import File, Record
from ...policy import Viewer
from .. import audit


def every_field_tier(record_type: str, stated: dict[str, str] | None) -> dict[str, str]:
    """The tier of each sensitive field group of ``record_type``: a group not stated has the default.

    Shapes state every group, so that two shapes saying the same thing compare equal.
    """
    stated = stated or {}
    return {g: stated.get(g, policy.DEFAULT_FIELD_TIER) for g in policy.SENSITIVE_FIELDS.get(record_type, {})}


@dataclass(frozen=True)
class TierChange:
    """A part of a record whose stated tier changes: the record itself, a sensitive field group or a file."""

    kind: str  # record, field or file
    key: str  # "" for the record, the field group's name or the file's id
    name: str  # what to call it: "" for the record, the group's name, or the file's title or name
    old: str
    new: str
    # What ``old`` is: the tier the part has (or had when last published), or the tier the
    # Secretariat last set for it (``"secretariat"``: see ``below_floors``).
    basis: str = "stated"

    @property
    def lowered(self) -> bool:
        """Whether the part becomes more open."""
        return policy.rank(self.new) < policy.rank(self.old)

    @property
    def raised(self) -> bool:
        """Whether the part becomes stricter."""
        return policy.rank(self.new) > policy.rank(self.old)


@dataclass(frozen=True)
class Tiers:
    """The tiers a record states, as stored: its own, each sensitive field group's, each file's."""

    record: str
    fields: dict[str, str]
    files: dict[str, tuple[str, str]]  # file id -> (tier, name)


def _file_name(file: File) -> str:
    return file.title or file.original_name


def tiers_of(record: Record, confidentiality: dict[str, Any], files: list[tuple[Any, str]]) -> Tiers:
    """The tiers that a confidentiality block (loaded or dumped) and ``files`` (id, tier) state."""
    names = {f.id: _file_name(f) for f in record.files}
    return Tiers(
        confidentiality.get("level") or policy.DEFAULT_RECORD_TIER.get(record.type, policy.PUBLIC),
        every_field_tier(record.type, confidentiality.get("field_tiers", confidentiality.get("fields"))),
        {file_id: (tier, names.get(file_id, "")) for file_id, tier in files if file_id},
    )


def stated_tiers(record: Record) -> Tiers:
    """The tiers ``record`` states now (files not yet flushed have no id and are left out)."""
    return tiers_of(
        record,
        {"level": record.tier, "field_tiers": record.field_tiers},
        [(f.id, f.tier) for f in record.files],
    )


def tier_changes(before: Tiers, after: Tiers) -> list[TierChange]:
    """What changes from ``before`` to ``after``: the record, then field groups, then files in both."""
    changes = []
    if before.record != after.record:
        changes.append(TierChange("record", "", "", before.record, after.record))
    for group, old in before.fields.items():
        if after.fields.get(group, old) != old:
            changes.append(TierChange("field", group, group, old, after.fields[group]))
    for file_id, (old, name) in before.files.items():
        new = after.files.get(file_id, (old, name))[0]
        if new != old:
            changes.append(TierChange("file", file_id, name, old, new))
    return changes


def revision_changes(record: Record) -> list[TierChange]:
    """The tier changes that publishing ``record``'s pending revision would make (none without one).

    Files that the revision drops, or that the Secretariat has removed since, are not changes.
    """
    if record.revision is None:
        return []
    stated = [(s.get("id"), s.get("tier") or policy.PUBLIC) for s in record.revision.get("files", [])]
    after = tiers_of(record, record.revision.get("confidentiality") or {}, stated)
    return tier_changes(stated_tiers(record), after)


def refuse_lowering(changes: list[TierChange]) -> None:
    """Raise Invalid, by form field, naming each part that ``changes`` would make more open."""
    errors: dict[str, Any] = {}
    for change in (c for c in changes if c.lowered):
        part = _l("This record") if change.kind == "record" else _part_name(change)
        message = _l(
            "%(part)s would become more open (%(old)s → %(new)s). The Secretariat does that on the review"
            " page, with a reason.",
            part=part,
            old=LABELS["tier"].get(change.old, change.old),
            new=LABELS["tier"].get(change.new, change.new),
        )
        _add_message(errors, change, message)
    if errors:
        raise Invalid(errors)


def log_tier_changes(
    viewer: Viewer, record: Record, changes: list[TierChange], reason: str, **detail: Any
) -> None:
    """One trail entry per part whose tier changes, with the reason."""
    files = {f.id: f for f in record.files}
    for change in changes:
        audit.log(
            viewer,
            "tier_change",
            record=record,
            file=files.get(change.key) if change.kind == "file" else None,
            field=change.key if change.kind == "field" else None,
            old=change.old,
            new=change.new,
            reason=reason,
            **detail,
        )


# What the Secretariat set -----------------------------------------------------------------------


def _part_key(kind: str, key: str) -> tuple[str, str]:
    return ("record", "") if kind == "record" else (f"{kind}s", key)


def remember_secretariat_tier(record: Record, kind: str, key: str, tier: str) -> None:
    """Note that the Secretariat set the part ``kind``/``key`` of ``record`` to ``tier``: it stands."""
    floors = copy.deepcopy(record.tier_floors or {})
    group, name = _part_key(kind, key)
    if group == "record":
        floors["record"] = tier
    else:
        floors.setdefault(group, {})[name] = tier
    record.tier_floors = floors


def secretariat_tier(record: Record, kind: str, key: str = "") -> str | None:
    """The tier the Secretariat last set for a part of ``record``, or None if it never set one."""
    floors = record.tier_floors or {}
    group, name = _part_key(kind, key)
    return floors.get("record") if group == "record" else (floors.get(group) or {}).get(name)


def secretariat_tiers(record: Record) -> dict[str, str]:
    """Every tier the Secretariat set for a part of ``record``, by part: ``record``, ``field:<group>``
    and ``file:<id>`` (a form offers nothing more open for them)."""
    floors = record.tier_floors or {}
    found = {"record": floors["record"]} if floors.get("record") else {}
    found.update({f"field:{group}": tier for group, tier in (floors.get("fields") or {}).items()})
    found.update({f"file:{file_id}": tier for file_id, tier in (floors.get("files") or {}).items()})
    return found


def below_floors(record: Record, stated: Tiers) -> list[TierChange]:
    """The parts that ``stated`` makes more open than the Secretariat last set them.

    Each comes as a change from the Secretariat's tier (``basis="secretariat"``) to the stated one.
    """
    found = []
    level = secretariat_tier(record, "record")
    if level and policy.rank(stated.record) < policy.rank(level):
        found.append(TierChange("record", "", "", level, stated.record, "secretariat"))
    for group, tier in stated.fields.items():
        floor = secretariat_tier(record, "field", group)
        if floor and policy.rank(tier) < policy.rank(floor):
            found.append(TierChange("field", group, group, floor, tier, "secretariat"))
    for file_id, (tier, name) in stated.files.items():
        floor = secretariat_tier(record, "file", file_id)
        if floor and policy.rank(tier) < policy.rank(floor):
            found.append(TierChange("file", file_id, name, floor, tier, "secretariat"))
    return found


def refuse_below_floors(record: Record, stated: Tiers) -> None:
    """Raise Invalid, by form field, naming each part ``stated`` makes more open than the Secretariat set it.

    Whatever a Party posts (a stale tab included), a tier the Secretariat set stands until the
    Secretariat itself changes it, on the review page, with a reason.
    """
    errors: dict[str, Any] = {}
    for change in below_floors(record, stated):
        message = _l(
            "The CITES Secretariat has set %(part)s to %(tier)s. Only the Secretariat can make it more open.",
            part=_part_name(change),
            tier=LABELS["tier"].get(change.old, change.old),
        )
        _add_message(errors, change, message)
    if errors:
        raise Invalid(errors)


def _part_name(change: TierChange) -> Any:
    # Lazy labels: the message is put into words where it is shown, in the viewer's language.
    if change.kind == "record":
        return _l("this record")
    return LABELS["field"].get(change.key, change.key) if change.kind == "field" else change.name


def _add_message(errors: dict[str, Any], change: TierChange, message: Any) -> None:
    """File ``message`` under the form field of ``change``'s part."""
    if change.kind == "file":
        errors.setdefault("files", []).append(message)
    else:
        key = "level" if change.kind == "record" else "fields"
        errors.setdefault("confidentiality", {}).setdefault(key, []).append(message)


def to_publish(record: Record) -> Tiers:
    """The tiers that publishing ``record`` now would give it: its revision's, or its own."""
    if record.revision_status == "submitted" and record.revision is not None:
        stated = [(s.get("id"), s.get("tier") or policy.PUBLIC) for s in record.revision.get("files", [])]
        return tiers_of(record, record.revision.get("confidentiality") or {}, stated)
    return stated_tiers(record)


def publish_lowers(record: Record) -> list[TierChange]:
    """Every part that publishing ``record`` makes more open: than it is published now (a revision),
    or than the Secretariat last set it. Publishing them takes the Secretariat's reason."""
    found = [c for c in revision_changes(record) if c.lowered]
    seen = {(c.kind, c.key) for c in found}
    found += [c for c in below_floors(record, to_publish(record)) if (c.kind, c.key) not in seen]
    return found


def opened_with_record(record: Record, tier: str) -> list[TierChange]:
    """The parts that would become more open if ``record`` itself went to ``tier``: those whose own
    tier is more open than the record's, which the record's tier held back until now.

    Each comes as a change of its effective tier. Documents of the Party's pending revision are
    left out: they wait, unpublished, whatever the record's tier.
    """
    if policy.rank(tier) >= policy.rank(record.tier):
        return []
    found = []
    for group in policy.SENSITIVE_FIELDS.get(record.type, {}):
        stored = (record.field_tiers or {}).get(group, policy.DEFAULT_FIELD_TIER)
        old, new = policy.field_tier(record, group), policy.strictest(stored, tier)
        if policy.rank(new) < policy.rank(old):
            found.append(TierChange("field", group, group, old, new))
    for file in record.files:
        old, new = policy.file_tier(file), policy.strictest(file.tier, tier)
        if not file.pending and policy.rank(new) < policy.rank(old):
            found.append(TierChange("file", file.id, _file_name(file), old, new))
    return found


# Changing a tier on the desk -----------------------------------------------------------------


def change_tier(viewer: Viewer, obj: Record | File, tier: str, reason: str, field: str | None = None) -> None:
    """Give ``obj`` (or its sensitive ``field``) the tier ``tier``, stricter or more open, with the reason;
    it takes effect everywhere once committed.

    Making a part more open is the Secretariat's deliberate decision, kept in the trail with its
    reason: a file or field never becomes more open than its record, a document that the Party's
    pending revision adds only stricter (it is the revision's). Raises Forbidden for anyone but the
    Secretariat; Invalid for an unknown tier or field, a missing reason, the tier the part already
    has, or a lowering that these rules refuse.
    """
    if not policy.can(viewer, "mark_confidential", obj):
        raise Forbidden("mark_confidential")
    if tier not in policy.allowed_tiers(policy.CONFIDENTIAL):
        raise Invalid({"tier": [_l("Unknown tier.")]})
    reason = (reason or "").strip()
    if not reason or len(reason) > 2000:
        raise Invalid({"reason": [_l("Give the reason (at most 2000 characters).")]})
    record = obj if isinstance(obj, Record) else obj.record
    if field is not None:
        if not isinstance(obj, Record) or field not in policy.SENSITIVE_FIELDS.get(record.type, {}):
            raise Invalid({"field": [_l("This record has no such confidential field.")]})
        current = policy.field_tier(record, field)
    else:
        current = policy.file_tier(obj) if isinstance(obj, File) else obj.tier
    raised = policy.rank(tier) > policy.rank(current)
    if not raised:
        _check_lowering(obj, record, field, current, tier)
    opened = opened_with_record(record, tier) if isinstance(obj, Record) and field is None else []
    kind = "field" if field is not None else ("file" if isinstance(obj, File) else "record")
    remember_secretariat_tier(record, kind, field or (obj.id if isinstance(obj, File) else ""), tier)
    if field is not None:
        record.field_tiers = {**(record.field_tiers or {}), field: tier}
    else:
        obj.tier = tier
    if raised and isinstance(obj, Record) and field is None:
        record.peak_tier = policy.strictest(record.peak_tier, tier)
    if raised and record.revision is not None:
        # Publishing the revision the Party prepared before must not lower the tier again.
        record.revision = _raised_in_revision(record, obj, field, tier)
    # Text that leaves a tier must leave its index too; text that reaches one is simply added.
    search.enqueue(record.id)
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
    # What the record's tier held back opens with it: each such part is in the trail on its own.
    log_tier_changes(viewer, record, opened, reason, opened_with_record=True)


def _check_lowering(
    obj: Record | File, record: Record, field: str | None, current: str, tier: str
) -> None:
    """Raise Invalid unless ``obj`` (or its ``field``) may go from ``current`` down to ``tier``."""
    if tier == current:
        raise Invalid({"tier": [_l("This is its tier already.")]})
    if isinstance(obj, File) and obj.pending:
        raise Invalid({"tier": [_l("A document of the Party's pending revision can only be made stricter.")]})
    if (field is not None or isinstance(obj, File)) and policy.rank(tier) < policy.rank(record.tier):
        raise Invalid(
            {"tier": [_l("A part is never more open than its record: make the record more open first.")]}
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
