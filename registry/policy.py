"""The one rule that decides who may see and do what.

Every part of the registry asks this module: views, the API, search, exports, the CLI.
It never reads Flask globals: callers pass the viewer (a signed-in ``User``, an ``Actor``
for the CLI, or ``None`` for an anonymous visitor). It offers the rule in each form a
caller needs:

* ``can(viewer, action, obj)``: the single-object check;
* ``visible(select, viewer)``: the same rule as a SQL filter on records;
* ``tier_of(viewer)``: the tier of the search index the viewer may use;
* ``mask(record, viewer)``: which fields, files and text of a record the viewer may see, and
  which of the records it shows (a network's members); ``services.records.shape.project``
  applies it;
* ``audience(tier)``: the viewer who stands for everyone at a tier, for what a tier's index or
  export holds.

Whatever is not explicitly allowed is refused (fail closed): an unknown role, action or
tier gives nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, and_, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from .errors import NotFound
from .models import SHOWN_RECORDS, AuditEvent, File, Record
from .vocab import ROLES, TIERS, Role, Status

PUBLIC, REGISTERED, CONFIDENTIAL = TIERS
_RANK = {tier: rank for rank, tier in enumerate(TIERS)}

# The widest tier each signed-in role may read across the registry.
ROLE_TIER = {
    Role.READER: REGISTERED,
    Role.PARTY: REGISTERED,
    Role.ENFORCEMENT: CONFIDENTIAL,
    Role.SECRETARIAT: CONFIDENTIAL,
}

# Named sensitive fields: group name -> detail attributes, with the tier they get by default.
SENSITIVE_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "rescue_centre": {
        "address": ("address",),
        "coordinates": ("latitude", "longitude"),
        "capacity": ("capacity",),
        "contacts": ("contacts",),
    },
    "agreement": {"financial_terms": ("financial_terms",)},
}
DEFAULT_FIELD_TIER = CONFIDENTIAL
# Contracts are confidential unless the submitter says otherwise.
DEFAULT_RECORD_TIER = {"agreement": CONFIDENTIAL}

# The statuses in which a Party may change its record (never while the Secretariat reviews it).
PARTY_EDITABLE_STATUSES = (Status.DRAFT, Status.RETURNED)


class Viewer(Protocol):
    """What the policy needs to know about whoever is asking."""

    role: str
    party_iso: str | None

    @property
    def is_active(self) -> bool: ...


@dataclass(frozen=True)
class Actor:
    """A viewer that is not a signed-in user, e.g. the command line acting for the Secretariat."""

    role: str
    party_iso: str | None = None
    is_active: bool = True


SYSTEM = Actor(role=Role.SECRETARIAT)

# Who stands for "everyone at this tier": what all of them may see, and nothing that only some of
# them may (a Party's own material). A tier's index and a tier's export are made for these viewers.
_AUDIENCE: dict[str, Actor | None] = {
    "public": None,
    "registered": Actor(role="reader"),
    "confidential": Actor(role="enforcement"),
}
NOBODY = Actor(role="nobody")


def audience(tier: str | None) -> Viewer | None:
    """The viewer whose rights are exactly those of ``tier``: anonymous, a reader or an officer.

    An unknown tier gets a viewer of no role, who sees nothing (fail closed).
    """
    return _AUDIENCE[tier] if tier in _AUDIENCE else NOBODY


def rank(tier: str | None) -> int:
    """The order of ``tier`` (public < registered < confidential); unknown tiers rank highest."""
    return _RANK.get(tier or "", len(TIERS))


def strictest(*tiers: str | None) -> str:
    """The strictest of ``tiers``; an unknown tier counts as confidential."""
    return max((t if t in _RANK else CONFIDENTIAL for t in tiers), key=rank)


def allows(viewer_tier: str | None, tier: str | None) -> bool:
    """Whether something of ``tier`` may be seen at ``viewer_tier`` (no tier sees nothing)."""
    return viewer_tier in _RANK and tier in _RANK and rank(tier) <= rank(viewer_tier)


def _role(viewer: Viewer | None) -> str | None:
    if viewer is None or not viewer.is_active:
        return None
    return viewer.role if viewer.role in ROLES else "unknown"


def tier_of(viewer: Viewer | None) -> str | None:
    """The tier of material the viewer may read across the registry, or None for nothing.

    Anonymous visitors (and deactivated accounts) read the public tier; an unknown role reads nothing.
    """
    role = _role(viewer)
    if role is None:
        return PUBLIC
    return ROLE_TIER.get(role)


def allowed_tiers(tier: str | None) -> tuple[str, ...]:
    """Every tier visible at ``tier``: empty when ``tier`` is None or unknown."""
    return tuple(t for t in TIERS if allows(tier, t))


def _own_party(viewer: Viewer | None, party_iso: str | None) -> bool:
    return _role(viewer) == Role.PARTY and bool(viewer.party_iso) and viewer.party_iso == party_iso  # type: ignore[union-attr]


def tier_for(viewer: Viewer | None, record: Record) -> str | None:
    """The tier at which ``viewer`` sees the parts of ``record``.

    The Secretariat and the record's own Party see all of it; everyone else sees it at their role's tier.
    """
    if _role(viewer) == Role.SECRETARIAT or _own_party(viewer, record.party_iso):
        return CONFIDENTIAL
    return tier_of(viewer)


def field_tier(record: Record, name: str) -> str:
    """The effective tier of the sensitive field group ``name``: never more open than the record."""
    stored = (record.field_tiers or {}).get(name, DEFAULT_FIELD_TIER)
    return strictest(stored, record.tier)


def file_tier(file: File) -> str:
    """The effective tier of a file: never more open than its record.

    A file that only old versions list inherits, like them, the strictest tier the record ever had.
    """
    if file.retired:
        return strictest(file.tier, file.record.tier, file.record.peak_tier)
    return strictest(file.tier, file.record.tier)


def _editable(record: Record) -> bool:
    """Whether the Party may change ``record`` now (not while the Secretariat has it under review)."""
    if record.status == Status.PUBLISHED:
        return record.revision_status in (None, *PARTY_EDITABLE_STATUSES)
    return record.status in PARTY_EDITABLE_STATUSES


def can(viewer: Viewer | None, action: str, obj: Any = None) -> bool:
    """Whether ``viewer`` may perform ``action`` on ``obj`` (a Record, a File, a Party ISO code or None).

    Unknown actions are refused.
    """
    role = _role(viewer)
    if action == "view":
        return isinstance(obj, Record) and _can_view(viewer, obj)
    if action == "download":
        return isinstance(obj, File) and _can_download(viewer, obj)
    if action == "see_history":
        # Old versions, revisions and the trail of a record: its own Party and the Secretariat.
        return isinstance(obj, Record) and _keeps(viewer, obj)
    if action == "submit":
        # Something to submit: a draft or returned record, or such a revision of a published one.
        return (
            isinstance(obj, Record)
            and _own_party(viewer, obj.party_iso)
            and (
                obj.status in PARTY_EDITABLE_STATUSES
                or (obj.status == Status.PUBLISHED and obj.revision_status in PARTY_EDITABLE_STATUSES)
            )
        )
    if action == "withdraw":
        if not isinstance(obj, Record) or obj.status == Status.WITHDRAWN:
            return False
        own = _own_party(viewer, obj.party_iso)
        return role == Role.SECRETARIAT or (own and obj.status != Status.PUBLISHED)
    if action == "create":
        # obj is the Party (ISO code) the new record would belong to; None for global material.
        return role == Role.SECRETARIAT or (obj is not None and _own_party(viewer, obj))
    if action == "edit":
        # A Party edits its drafts and returned records, and prepares revisions of its published ones.
        return isinstance(obj, Record) and (
            role == Role.SECRETARIAT or (_own_party(viewer, obj.party_iso) and _editable(obj))
        )
    if action in ("review", "publish", "mark_confidential"):
        return role == Role.SECRETARIAT and isinstance(obj, Record | File)
    if action in ("manage_users", "see_extraction_errors", "review_desk"):
        return role == Role.SECRETARIAT
    if action == "see_downloaders":
        # Who opened a record's non-public files is the Secretariat's to know; the record's keepers
        # read how many did, by role and Party (``services.audit.download_counts``).
        return role == Role.SECRETARIAT
    if action == "export":
        # obj is the tier of the export.
        return role == Role.SECRETARIAT or allows(tier_of(viewer), obj)
    return False


# Each rule below is written twice, side by side: for one object in Python (``can``, ``mask``) and
# as a SQL condition for queries (lists, counts, search re-reads, exports). ``_clause`` is the shape
# every SQL form shares.


def _clause(
    viewer: Viewer | None, open_at: Callable[[tuple[str, ...]], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """The Secretariat sees all, a Party all of its own, everyone else what ``open_at(tiers readable
    by the viewer)`` allows, and no tier means nothing."""
    role = _role(viewer)
    if role == Role.SECRETARIAT:
        return true()
    tiers = allowed_tiers(tier_of(viewer))
    condition = open_at(tiers) if tiers else false()
    if role == Role.PARTY and viewer.party_iso:  # type: ignore[union-attr]
        condition = or_(condition, Record.party_iso == viewer.party_iso)  # type: ignore[union-attr]
    return condition


# Rule: who sees a record. Its keepers (the Secretariat, its own Party) always; everyone else once
# it is published, at a tier their role reads.


def _can_view(viewer: Viewer | None, record: Record) -> bool:
    if _keeps(viewer, record):
        return True
    return record.status == Status.PUBLISHED and allows(tier_of(viewer), record.tier)


def _published_in(tiers: tuple[str, ...]) -> ColumnElement[bool]:
    return and_(Record.status == Status.PUBLISHED, Record.tier.in_(tiers))


def visible_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """The rule of ``can(viewer, "view", record)`` as a SQL condition on ``Record``."""
    return _clause(viewer, _published_in)


def visible(select: Select[Any], viewer: Viewer | None) -> Select[Any]:
    """Restrict a select over ``Record`` to the records ``viewer`` may see."""
    return select.where(visible_clause(viewer))


def published_at(select: Select[Any], tier: str | None) -> Select[Any]:
    """Restrict a select over ``Record`` to the published records that everyone at ``tier`` may see.

    This is what a tier's search index and a tier's export hold: never a Party's drafts.
    """
    tiers = allowed_tiers(tier)
    return select.where(_published_in(tiers) if tiers else false())


# Rule: who downloads a file. Whoever sees its record at the file's effective tier; a file added in
# a revision waits, like the revision, for publication, and one that only old versions list is
# history: both are the record's keepers' alone. The mask shows the files of the live record, so
# it leaves out the pending ones for everyone.


def _can_download(viewer: Viewer | None, file: File) -> bool:
    return (
        _can_view(viewer, file.record)
        and allows(tier_for(viewer, file.record), file_tier(file))
        and (not (file.pending or file.retired) or _keeps(viewer, file.record))
    )


def visible_files_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """The rule of ``can(viewer, "download", file)`` as a SQL condition on ``File`` joined to ``Record``."""
    return _clause(
        viewer,
        lambda tiers: and_(
            _published_in(tiers), File.tier.in_(tiers), File.pending == false(), File.retired == false()
        ),
    )


# Rule: who keeps a record's working material (old versions, revisions, its trail): its Party and
# the Secretariat.


def _keeps(viewer: Viewer | None, record: Record) -> bool:
    """Whether ``viewer`` holds ``record``'s working material: its own Party or the Secretariat."""
    return _role(viewer) == Role.SECRETARIAT or _own_party(viewer, record.party_iso)


def kept_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """The rule of ``can(viewer, "see_history", record)`` as a SQL condition on ``Record``."""
    role = _role(viewer)
    if role == Role.SECRETARIAT:
        return true()
    if role == Role.PARTY and viewer.party_iso:  # type: ignore[union-attr]
        return Record.party_iso == viewer.party_iso  # type: ignore[union-attr]
    return false()


# Rule: who reads a visible record's translations. They inherit the strictest tier the record ever
# had (``peak_tier``): a translation made while it was confidential stays so.


def _can_read_translations(viewer: Viewer | None, record: Record) -> bool:
    return allows(tier_for(viewer, record), strictest(record.peak_tier, record.tier))


def visible_translations_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """The rule of ``_can_read_translations`` as a SQL condition on a visible ``Record``."""
    return _clause(viewer, lambda tiers: Record.peak_tier.in_(tiers))


# Rule: who reads the audit trail (SQL only: entries are only ever read in lists).


def visible_audit_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """Which audit entries ``viewer`` may read: the Secretariat all; a Party its own records', but
    not their downloads, which name the people who read them, unless ``can(viewer,
    "see_downloaders")``; others none."""
    role = _role(viewer)
    if role == Role.SECRETARIAT:
        return true()
    if role == Role.PARTY and viewer.party_iso:  # type: ignore[union-attr]
        own = and_(AuditEvent.party_iso == viewer.party_iso, AuditEvent.record_id.is_not(None))  # type: ignore[union-attr]
        return own if can(viewer, "see_downloaders") else and_(own, AuditEvent.action != "download")
    return false()


# What one viewer may see of one record, decided here and applied by ``services.records.shape``.


@dataclass(frozen=True)
class Mask:
    """The parts of one record that one viewer may see.

    ``field_tiers`` holds the sensitive field groups the viewer may see, at their effective tier;
    ``hidden_details`` the detail attributes of the others; ``files`` the ids of the files shown;
    ``related`` the ids of the shown records (a network's members) the viewer may see themselves.
    """

    tier: str
    field_tiers: dict[str, str]
    hidden_details: frozenset[str]
    files: frozenset[str]
    translations: bool
    related: dict[str, frozenset[str]]


def related(record: Record) -> dict[str, list[Record]]:
    """The other records that ``record``'s projection shows, by detail name (a network's ``members``).

    The relations are those of ``models.SHOWN_RECORDS``: the projection filters each related record
    through the policy for the viewer, and the search outbox re-indexes every record that shows one
    that changed.
    """
    return {name: list(getattr(record, name)) for name in SHOWN_RECORDS if name in record.DETAIL_FIELDS}


def mask(record: Record, viewer: Viewer | None) -> Mask:
    """What ``viewer`` may see of ``record``, at ``tier_for(viewer, record)``.

    A related record is shown only if the viewer may see it itself: the container's tier never
    decides for it. Raises NotFound when the viewer may not see ``record`` at all (callers check
    ``can`` first; one who forgets answers 404, never the record).
    """
    tier = tier_for(viewer, record)
    if tier is None or not _can_view(viewer, record) or not allows(tier, record.tier):
        raise NotFound(record.id)
    shown: dict[str, str] = {}
    hidden: set[str] = set()
    for group, attrs in SENSITIVE_FIELDS.get(record.type, {}).items():
        effective = field_tier(record, group)
        if allows(tier, effective):
            shown[group] = effective
        else:
            hidden.update(attrs)
    return Mask(
        tier=tier,
        field_tiers=shown,
        hidden_details=frozenset(hidden),
        files=frozenset(f.id for f in record.files if allows(tier, file_tier(f)) and not f.pending),
        translations=_can_read_translations(viewer, record),
        related={
            name: frozenset(other.id for other in others if _can_view(viewer, other))
            for name, others in related(record).items()
        },
    )
