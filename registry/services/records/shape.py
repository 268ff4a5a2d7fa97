"""The one mapping between a record and what is shown of it.

Two views of a record come from here, and from nowhere else:

* ``record_shape``: what its keepers see and edit (every field, unprojected) in the JSON shape that
  ``schemas`` validates: the form's starting point, the revision a Party keeps beside its
  published record, and each kept version's payload;
* ``project``: what one viewer may see, through the policy's ``mask``, for pages, e-mail, search
  documents, exports and the API; ``exported`` is a projection in the JSON shape.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from schemas import RECORD_SCHEMAS

from ... import policy
from ...models import File, Record
from ...policy import Viewer
from .tiers import every_field_tier

# Core attributes copied from the JSON shape onto a record, and back.
CORE = ("title", "summary", "language", "scope", "issuing_bodies", "year", "date")


def record_shape(record: Record) -> dict[str, Any]:
    """The record's own content in the JSON shape (every field, unprojected; for its keepers only)."""
    details = record.details()
    if "members" in details:
        details["members"] = [m.id for m in details["members"]]
    data = {
        "type": record.type,
        **{name: getattr(record, name) for name in CORE},
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
            "field_tiers": every_field_tier(record.type, record.field_tiers),
        },
        "details": details,
    }
    shape = RECORD_SCHEMAS[record.type]().dump(data)
    shape["files"] = [file_shape(f) for f in record.files if not f.pending]
    return shape


def file_shape(file: File) -> dict[str, Any]:
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


def dumped(data: dict[str, Any]) -> dict[str, Any]:
    """Validated data (dates as objects) back in the JSON shape, as stored in a revision."""
    confidentiality = data["confidentiality"]
    confidentiality = {
        **confidentiality,
        "field_tiers": every_field_tier(data["type"], confidentiality.get("field_tiers")),
    }
    shape = RECORD_SCHEMAS[data["type"]]().dump(
        {**data, "party": data.get("party"), "status": None, "files": [], "confidentiality": confidentiality}
    )
    shape.pop("files", None)
    shape.pop("status", None)
    return shape


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
    """A record as one viewer may see it: hidden fields, files and translations are simply absent."""

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


def project(record: Record, viewer: Viewer | None) -> Projection:
    """Only what ``viewer`` may see of ``record``: the policy's ``mask`` applied.

    Raises NotFound when the viewer may not see ``record`` (callers check ``can`` first).
    """
    mask = policy.mask(record, viewer)
    details = {k: v for k, v in record.details().items() if k not in mask.hidden_details}
    for name, others in policy.related(record).items():
        details[name] = [
            {"id": other.id, "title": other.title, "party_iso": other.party_iso}
            for other in others
            if other.id in mask.related[name]
        ]
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
            "field_tiers": dict(mask.field_tiers),
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
        translations=(
            [{"language": t.language, "title": t.title, "summary": t.summary} for t in record.translations]
            if mask.translations
            else []
        ),
        details=details,
        files=[
            FileView(
                id=f.id,
                title=f.title,
                language=f.language,
                tier=policy.file_tier(f),
                size=f.size,
                sha256=f.sha256,
                media_type=f.media_type,
                original_name=f.original_name,
                text_error=f.text_error,
            )
            for f in record.files
            if f.id in mask.files
        ],
        published_at=record.published_at,
        updated_at=record.updated_at,
    )


def exported(projection: Projection) -> dict[str, Any]:
    """What a viewer may see of a record (a ``Projection``) in the JSON shape, as export writes it."""
    schema = RECORD_SCHEMAS[projection.type]()
    details = dict(projection.details)
    if "members" in details:
        details["members"] = [m["id"] for m in details["members"]]
    data = {
        "id": projection.id,
        "type": projection.type,
        "title": projection.title,
        "summary": projection.summary,
        "language": projection.language,
        "translations": projection.translations,
        "party": projection.party_iso,
        "scope": projection.scope,
        "region": projection.region,
        "issuing_bodies": projection.issuing_bodies,
        "year": projection.year,
        "date": projection.date,
        "taxa": [t["name"] for t in projection.taxa],
        "status": projection.status,
        "confidentiality": projection.confidentiality,
        "details": details,
        "files": [
            {
                "id": f.id,
                "path": f.original_name,
                "title": f.title,
                "language": f.language,
                "tier": f.tier,
                "size": f.size,
                "sha256": f.sha256,
                "media_type": f.media_type,
                "original_name": f.original_name,
            }
            for f in projection.files
        ],
        "published_at": projection.published_at,
        "updated_at": projection.updated_at,
    }
    return schema.dump(data)
