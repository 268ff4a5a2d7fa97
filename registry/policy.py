"""The one rule that decides who may see and do what.

Every part of the registry asks this module: views, the API, search, exports, the CLI.
It never reads Flask globals: callers pass the viewer (a signed-in ``User``, an ``Actor``
for the CLI, or ``None`` for an anonymous visitor). It offers the rule in each form a
caller needs:

* ``can(viewer, action, obj)``: the single-object check;
* ``visible(select, viewer)``: the same rule as a SQL filter on records;
* ``tier_of(viewer)``: the tier of the search index the viewer may use;
* ``project(record, viewer)``: only the fields, files and text the viewer may see, and of the
  records it shows (a network's members) only those the viewer may see themselves;
* ``audience(tier)``: the viewer who stands for everyone at a tier, for what a tier's index or
  export holds.

Whatever is not explicitly allowed is refused (fail closed): an unknown role, action or
tier gives nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Select, and_, false, or_, true
from sqlalchemy.sql.elements import ColumnElement

from .models import SHOWN_RECORDS, AuditEvent, File, Record
from .vocab import ROLES, TIERS

PUBLIC, REGISTERED, CONFIDENTIAL = TIERS
_RANK = {tier: rank for rank, tier in enumerate(TIERS)}

# The widest tier each signed-in role may read across the registry.
ROLE_TIER = {
    "reader": REGISTERED,
    "party": REGISTERED,
    "enforcement": CONFIDENTIAL,
    "secretariat": CONFIDENTIAL,
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

# Actions on a record that only its own Party (while it is not under review) or the Secretariat may take.
PARTY_EDITABLE_STATUSES = ("draft", "returned")
ACTIONS = (
    "view",
    "download",
    "create",
    "edit",
    "review",
    "publish",
    "mark_confidential",
    "manage_users",
    "see_extraction_errors",
    "export",
    "see_history",
    "submit",
    "withdraw",
    "review_desk",
    "see_downloaders",
)


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


SYSTEM = Actor(role="secretariat")

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
    return _role(viewer) == "party" and bool(viewer.party_iso) and viewer.party_iso == party_iso  # type: ignore[union-attr]


def tier_for(viewer: Viewer | None, record: Record) -> str | None:
    """The tier at which ``viewer`` sees the parts of ``record``.

    The Secretariat and the record's own Party see all of it; everyone else sees it at their role's tier.
    """
    if _role(viewer) == "secretariat" or _own_party(viewer, record.party_iso):
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


def _can_view(viewer: Viewer | None, record: Record) -> bool:
    if _role(viewer) == "secretariat" or _own_party(viewer, record.party_iso):
        return True
    return record.status == "published" and allows(tier_of(viewer), record.tier)


def _keeps(viewer: Viewer | None, record: Record) -> bool:
    """Whether ``viewer`` holds ``record``'s working material: its own Party or the Secretariat."""
    return _role(viewer) == "secretariat" or _own_party(viewer, record.party_iso)


def _editable(record: Record) -> bool:
    """Whether the Party may change ``record`` now (not while the Secretariat has it under review)."""
    if record.status == "published":
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
        return (
            isinstance(obj, File)
            and _can_view(viewer, obj.record)
            and allows(tier_for(viewer, obj.record), file_tier(obj))
            # A file added in a revision waits, like the revision, for publication; one that only old
            # versions list is history, which only the record's keepers read.
            and (not (obj.pending or obj.retired) or _keeps(viewer, obj.record))
        )
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
                or (obj.status == "published" and obj.revision_status in PARTY_EDITABLE_STATUSES)
            )
        )
    if action == "withdraw":
        if not isinstance(obj, Record) or obj.status == "withdrawn":
            return False
        return role == "secretariat" or (_own_party(viewer, obj.party_iso) and obj.status != "published")
    if action == "create":
        # obj is the Party (ISO code) the new record would belong to; None for global material.
        return role == "secretariat" or (role == "party" and obj is not None and _own_party(viewer, obj))
    if action == "edit":
        # A Party edits its drafts and returned records, and prepares revisions of its published ones.
        return isinstance(obj, Record) and (
            role == "secretariat" or (_own_party(viewer, obj.party_iso) and _editable(obj))
        )
    if action in ("review", "publish", "mark_confidential"):
        return role == "secretariat" and isinstance(obj, Record | File)
    if action in ("manage_users", "see_extraction_errors", "review_desk"):
        return role == "secretariat"
    if action == "see_downloaders":
        # Who opened a record's non-public files is the Secretariat's to know; the record's keepers
        # read how many did, by role and Party (``services.audit.download_counts``).
        return role == "secretariat"
    if action == "export":
        # obj is the tier of the export.
        return role == "secretariat" or allows(tier_of(viewer), obj)
    return False


def _clause(
    viewer: Viewer | None, open_at: Callable[[tuple[str, ...]], ColumnElement[bool]]
) -> ColumnElement[bool]:
    """The shape every SQL form of the rule shares: the Secretariat sees all, a Party all of its own,
    everyone else what ``open_at(tiers readable by the viewer)`` allows, and no tier means nothing."""
    role = _role(viewer)
    if role == "secretariat":
        return true()
    tiers = allowed_tiers(tier_of(viewer))
    condition = open_at(tiers) if tiers else false()
    if role == "party" and viewer.party_iso:  # type: ignore[union-attr]
        condition = or_(condition, Record.party_iso == viewer.party_iso)  # type: ignore[union-attr]
    return condition


def _published_in(tiers: tuple[str, ...]) -> ColumnElement[bool]:
    return and_(Record.status == "published", Record.tier.in_(tiers))


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


def visible_files_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """The rule of ``can(viewer, "download", file)`` as a SQL condition on ``File`` joined to ``Record``."""
    return _clause(
        viewer,
        lambda tiers: and_(
            _published_in(tiers), File.tier.in_(tiers), File.pending == false(), File.retired == false()
        ),
    )


def kept_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """The rule of ``can(viewer, "see_history", record)`` as a SQL condition on ``Record``: the
    Secretariat keeps every record, a Party its own, everyone else none."""
    role = _role(viewer)
    if role == "secretariat":
        return true()
    if role == "party" and viewer.party_iso:  # type: ignore[union-attr]
        return Record.party_iso == viewer.party_iso  # type: ignore[union-attr]
    return false()


def visible_audit_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """Which audit entries ``viewer`` may read: the Secretariat all; a Party its own records', but
    not their downloads, which name the people who read them, unless ``can(viewer,
    "see_downloaders")``; others none."""
    role = _role(viewer)
    if role == "secretariat":
        return true()
    if role == "party" and viewer.party_iso:  # type: ignore[union-attr]
        own = and_(AuditEvent.party_iso == viewer.party_iso, AuditEvent.record_id.is_not(None))  # type: ignore[union-attr]
        return own if can(viewer, "see_downloaders") else and_(own, AuditEvent.action != "download")
    return false()


def visible_translations_clause(viewer: Viewer | None) -> ColumnElement[bool]:
    """Whether a visible record's translations are visible: they inherit the strictest tier it ever had."""
    return _clause(viewer, lambda tiers: Record.peak_tier.in_(tiers))


@dataclass(frozen=True)
class FileView:
    """What a viewer may know of a file."""

    id: str
    title: str
    language: str
    tier: str
    size: int
    sha256: str
    media_type: str
    original_name: str
    text_error: str | None = None


@dataclass(frozen=True)
class Projection:
    """A record as one tier may see it: hidden fields, files and translations are simply absent."""

    id: str
    type: str
    title: str
    summary: str
    language: str
    party_iso: str | None
    scope: str
    region: str | None
    issuing_bodies: list[str]
    year: int | None
    date: dt.date | None
    status: str
    tier: str
    confidentiality: dict[str, Any]
    taxa: list[dict[str, Any]]
    translations: list[dict[str, str]]
    details: dict[str, Any]
    files: list[FileView]
    published_at: dt.datetime | None
    updated_at: dt.datetime | None

    @property
    def languages(self) -> list[str]:
        """Every language this viewer can read the record in: original, translations, files."""
        found = {
            self.language,
            *(t["language"] for t in self.translations),
            *(f.language for f in self.files),
        }
        return sorted(found)


class Hidden(LookupError):
    """The record is not visible at the requested tier."""


def related(record: Record) -> dict[str, list[Record]]:
    """The other records that ``record``'s projection shows, by detail name (a network's ``members``).

    The relations are those of ``models.SHOWN_RECORDS``: the projection filters each related record
    through the policy for the viewer, and the search outbox re-indexes every record that shows one
    that changed.
    """
    return {name: list(getattr(record, name)) for name in SHOWN_RECORDS if name in record.DETAIL_FIELDS}


def project(record: Record, viewer: Viewer | None) -> Projection:
    """Return only what ``viewer`` may see of ``record``, at ``tier_for(viewer, record)``.

    A related record (a network's member) is shown only if the viewer may see it itself: the
    container's tier never decides for it. Raises Hidden when the viewer may not see ``record``
    (callers check ``can`` first).
    """
    tier = tier_for(viewer, record)
    if not _can_view(viewer, record) or not allows(tier, record.tier):
        raise Hidden(record.id)
    sensitive = SENSITIVE_FIELDS.get(record.type, {})
    hidden_attrs: set[str] = set()
    visible_field_tiers: dict[str, str] = {}
    for group, attrs in sensitive.items():
        effective = field_tier(record, group)
        if allows(tier, effective):
            visible_field_tiers[group] = effective
        else:
            hidden_attrs.update(attrs)
    details = {k: v for k, v in record.details().items() if k not in hidden_attrs}
    for name, others in related(record).items():
        details[name] = [
            {"id": other.id, "title": other.title, "party_iso": other.party_iso}
            for other in others
            if _can_view(viewer, other)
        ]
    files = [
        FileView(
            id=f.id,
            title=f.title,
            language=f.language,
            tier=file_tier(f),
            size=f.size,
            sha256=f.sha256,
            media_type=f.media_type,
            original_name=f.original_name,
            text_error=f.text_error,
        )
        for f in record.files
        if allows(tier, file_tier(f)) and not f.pending
    ]
    translations = (
        [{"language": t.language, "title": t.title, "summary": t.summary} for t in record.translations]
        if allows(tier, strictest(record.peak_tier, record.tier))
        else []
    )
    return Projection(
        id=record.id,
        type=record.type,
        title=record.title,
        summary=record.summary,
        language=record.language,
        party_iso=record.party_iso,
        scope=record.scope,
        region=record.region,
        issuing_bodies=list(record.issuing_bodies or []),
        year=record.year,
        date=record.date,
        status=record.status,
        tier=record.tier,
        confidentiality={
            "level": record.tier,
            "rule": record.confidentiality_rule,
            "justification": record.confidentiality_justification,
            "disclosure_date": record.disclosure_date,
            "field_tiers": visible_field_tiers,
        },
        taxa=[
            {
                "name": t.name,
                "rank": t.rank,
                "appendix": t.appendix,
                "genus": t.genus,
                "family": t.family,
                "common_en": t.common_en,
                "common_fr": t.common_fr,
                "common_es": t.common_es,
            }
            for t in record.taxa
        ],
        translations=translations,
        details=details,
        files=files,
        published_at=record.published_at,
        updated_at=record.updated_at,
    )
