"""marshmallow schemas: one shape per resource type over a common core.

The same shapes serve import, export, forms and the API. They describe shape only: what a
viewer may see is decided by the policy's ``mask`` and applied by ``registry.services.records.shape``
before anything is dumped.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from . import messages  # noqa: F401 - marshmallow's messages, translated, before any schema
from .common import RecordSchema
from .types import DETAILS_SCHEMAS, RECORD_SCHEMAS

__all__ = ["DETAILS_SCHEMAS", "RECORD_SCHEMAS", "RecordSchema", "load_record"]


def load_record(raw: Any) -> dict[str, Any]:
    """Validate one record in the JSON shape and return clean data.

    Raises marshmallow.ValidationError whose ``messages`` name every bad or unknown field.
    """
    if not isinstance(raw, dict):
        raise ValidationError({"_schema": [_l("A record must be a JSON object.")]})
    record_type = raw.get("type")
    # Only a string can name a type (a list or an object in "type" is reported like any bad type).
    schema_cls = RECORD_SCHEMAS.get(record_type) if isinstance(record_type, str) else None
    if schema_cls is None:
        # The generic schema reports the bad type together with every other problem.
        RecordSchema().load(raw)
        raise ValidationError({"type": [_l("Unknown record type.")]})
    return schema_cls().load(raw)
