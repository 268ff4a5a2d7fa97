"""Reading records: one record, filtered lists, counts and a Party's page, all through the policy."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import contains_eager
from sqlalchemy.sql.elements import ColumnElement

from ... import policy
from ...db import session
from ...errors import Forbidden, NotFound
from ...models import File, Party, Record, RecordTranslation, Taxon, looks_like_id, record_taxa
from ...policy import Viewer
from .shape import Projection, project


@dataclass(frozen=True)
class RecordFilters:
    """Browse filters; each is optional."""

    type: str | None = None
    party: str | None = None
    region: str | None = None
    language: str | None = None
    taxon: str | None = None
    year: int | None = None

    def active(self) -> dict[str, Any]:
        """The filters that are set, by name."""
        values = ((f.name, getattr(self, f.name)) for f in fields(RecordFilters))
        return {name: value for name, value in values if value not in (None, "")}


@dataclass(frozen=True)
class Page:
    """One page of projected records."""

    items: list[Projection]
    total: int
    page: int
    per_page: int
    pages: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pages", max(1, math.ceil(self.total / self.per_page)))


def _lookup_clause(viewer: Viewer | None, action: str) -> ColumnElement[bool]:
    """The SQL form of ``can(viewer, action, record)`` for each action a record is looked up for."""
    if action == "view":
        return policy.visible_clause(viewer)
    if action == "see_history":
        # Whoever keeps a record may see it too; saying both keeps the lookup within ``visible``.
        return and_(policy.visible_clause(viewer), policy.kept_clause(viewer))
    raise ValueError(f"records are not looked up for {action!r}")


def _load(viewer: Viewer | None, record_id: str, action: str = "view") -> Record:
    """The record ``record_id`` if ``viewer`` may ``action`` it. Raises NotFound when missing or not.

    The policy is the query's own condition, so a record the viewer may not see and one that does
    not exist come back from the same statement as no row, at the same cost: the record's
    relationships (translations, files, taxa, its type's table) are loaded for visible records only.
    ``can`` then says the same of the loaded record, should the two forms of the rule ever drift.
    """
    if not looks_like_id(record_id, "r"):
        raise NotFound(record_id)
    record = session.scalar(select(Record).where(Record.id == record_id, _lookup_clause(viewer, action)))
    if record is None or not policy.can(viewer, action, record):
        raise NotFound(record_id)
    return record


def get_record(viewer: Viewer | None, record_id: str, action: str = "view") -> Record:
    """The record ``record_id`` if ``viewer`` may ``action`` it: ``view`` it, or ``see_history``
    (its own Party and the Secretariat, for the Party's pages).

    Raises NotFound when missing or not allowed alike, after the same work; ValueError for any
    other action (a programming error).
    """
    return _load(viewer, record_id, action)


def view_record(viewer: Viewer | None, record_id: str) -> Projection:
    """What ``viewer`` may see of record ``record_id``. Raises NotFound when missing or hidden."""
    record = _load(viewer, record_id)
    return project(record, viewer)


def _visible_language(viewer: Viewer | None, language: str) -> Any:
    """Records readable in ``language``: original, a visible translation, or a file the viewer may open."""
    file_in_language = exists().where(
        File.record_id == Record.id, File.language == language, policy.visible_files_clause(viewer)
    )
    translation = exists().where(
        RecordTranslation.record_id == Record.id, RecordTranslation.language == language
    )
    return or_(
        Record.language == language,
        file_in_language,
        translation & policy.visible_translations_clause(viewer),
    )


def _filtered(viewer: Viewer | None, filters: RecordFilters) -> Select[Any]:
    stmt = policy.visible(select(Record), viewer)
    if filters.type:
        stmt = stmt.where(Record.type == filters.type)
    if filters.party:
        stmt = stmt.where(Record.party_iso == filters.party)
    if filters.region:
        stmt = stmt.where(Record.region == filters.region)
    if filters.year:
        stmt = stmt.where(Record.year == filters.year)
    if filters.language:
        stmt = stmt.where(_visible_language(viewer, filters.language))
    if filters.taxon:
        name = filters.taxon
        stmt = stmt.where(
            exists()
            .where(record_taxa.c.record_id == Record.id, record_taxa.c.taxon_id == Taxon.id)
            .where(
                or_(
                    Taxon.name == name,
                    Taxon.genus == name,
                    Taxon.family == name,
                    Taxon.order_name == name,
                    Taxon.class_name == name,
                )
            )
        )
    return stmt


def list_records(viewer: Viewer | None, filters: RecordFilters, page: int = 1, per_page: int = 20) -> Page:
    """A page of the records ``viewer`` may see that match ``filters``, newest first."""
    stmt = _filtered(viewer, filters)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Record.published_at.desc().nulls_last(), Record.year.desc().nulls_last(), Record.title)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    items = [project(r, viewer) for r in rows]
    return Page(items=items, total=total, page=page, per_page=per_page)


def facet_counts(viewer: Viewer | None, filters: RecordFilters) -> dict[str, dict[str, int]]:
    """How many records that ``viewer`` may see match ``filters``, by type, region, year and Party."""
    base = _filtered(viewer, filters).subquery()
    names = ("type", "region", "year", "party_iso")
    columns = [base.c[name] for name in names]
    # One scan of the matching records, grouped by the four columns together, rather than one scan
    # per facet: records are wide rows (their text), and reading them dominated the browse page.
    totals: dict[str, dict[Any, int]] = {name: {} for name in names}
    for *values, n in session.execute(select(*columns, func.count()).group_by(*columns)):
        for name, value in zip(names, values, strict=True):
            if value is not None:
                totals[name][value] = totals[name].get(value, 0) + n
    return {name: {str(value): totals[name][value] for value in sorted(totals[name])} for name in names}


def home_summary(viewer: Viewer | None, latest: int = 6) -> dict[str, Any]:
    """Counts by type and region, the number of Parties represented, and the latest published records."""
    counts = facet_counts(viewer, RecordFilters())
    stmt = policy.visible(select(Record), viewer).where(Record.status == "published")
    newest = session.scalars(
        stmt.order_by(Record.published_at.desc().nulls_last(), Record.title).limit(latest)
    ).all()
    return {
        "total": sum(counts["type"].values()),
        "by_type": counts["type"],
        "by_region": counts["region"],
        "parties": len(counts["party_iso"]),
        "latest": [project(r, viewer) for r in newest],
    }


def get_file(viewer: Viewer | None, file_id: str, files_dir: Path) -> tuple[File, Path]:
    """The file ``file_id`` and its path, if ``viewer`` may download it. Raises NotFound otherwise."""
    if not looks_like_id(file_id, "f"):
        raise NotFound(file_id)
    # As for records: the policy is the query's condition, so a file the viewer may not download
    # and one that does not exist cost the same one statement; ``can`` then agrees.
    # The record comes with the file from the same join (the policy reads it); its lists (files,
    # translations, taxa) are read only if something asks for them.
    record = contains_eager(File.record)
    file = session.scalar(
        select(File)
        .join(Record)
        .where(File.id == file_id, policy.visible_files_clause(viewer))
        .options(record, record.lazyload(Record.files), record.lazyload(Record.translations))
        .options(record.lazyload(Record.taxa))
    )
    if file is None or not policy.can(viewer, "download", file):
        raise NotFound(file_id)
    path = files_dir / file.stored_name
    if not path.is_file():
        raise NotFound(file_id)
    return file, path


def list_parties() -> list[Party]:
    """Every Party, by ISO code (reference data: public)."""
    return list(session.scalars(select(Party).order_by(Party.iso)))


def get_party(iso: str) -> Party:
    """The Party with ISO code ``iso``. Raises NotFound."""
    valid = isinstance(iso, str) and len(iso) == 2 and iso.isascii() and iso.isalpha()
    party = session.get(Party, iso.upper()) if valid else None
    if party is None:
        raise NotFound(iso)
    return party


def list_taxa() -> list[Taxon]:
    """The taxon checklist (reference data: public)."""
    return list(session.scalars(select(Taxon).order_by(Taxon.class_name, Taxon.name)))


def require(viewer: Viewer, action: str, record: Record) -> None:
    """404 unless ``viewer`` sees ``record``; 403 unless it may also do ``action`` to it."""
    if not policy.can(viewer, "view", record):
        raise NotFound(record.id)
    if not policy.can(viewer, action, record):
        raise Forbidden(action)
