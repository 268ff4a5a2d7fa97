"""marshmallow schemas: one shape per resource type over a common core.

The same shapes serve import, export, forms and the API. They describe shape only: what a
viewer may see is decided by ``registry.policy.project`` before anything is dumped.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from registry.policy import Projection

from .common import RecordSchema
from .types import DETAILS_SCHEMAS, RECORD_SCHEMAS

__all__ = ["DETAILS_SCHEMAS", "RECORD_SCHEMAS", "RecordSchema", "dump_projection", "load_record"]


def load_record(raw: Any) -> dict[str, Any]:
    """Validate one record in the JSON shape and return clean data.

    Raises marshmallow.ValidationError whose ``messages`` name every bad or unknown field.
    """
    if not isinstance(raw, dict):
        raise ValidationError({"_schema": ["A record must be a JSON object."]})
    record_type = raw.get("type")
    # Only a string can name a type (a list or an object in "type" is reported like any bad type).
    schema_cls = RECORD_SCHEMAS.get(record_type) if isinstance(record_type, str) else None
    if schema_cls is None:
        # The generic schema reports the bad type together with every other problem.
        RecordSchema().load(raw)
        raise ValidationError({"type": ["Unknown record type."]})
    return schema_cls().load(raw)


def dump_projection(projection: Projection) -> dict[str, Any]:
    """Serialise what a viewer may see of a record (a ``policy.Projection``) in the JSON shape."""
    schema = RECORD_SCHEMAS[projection.type]()
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
        "details": {
            **projection.details,
            **(
                {"members": [m["id"] for m in projection.details["members"]]}
                if "members" in projection.details
                else {}
            ),
        },
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
