"""The one mapping between a record and the JSON shape that ``schemas`` validates.

What a record's keepers see and edit (every field, unprojected): the form's starting point, the
revision a Party keeps beside its published record, and each kept version's payload.
"""

from __future__ import annotations

from typing import Any

from schemas import RECORD_SCHEMAS

from ...models import File, Record
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
