"""The shape of a call for information, such as CITES Notification 2021/008."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .fields import Line, Text

# CITES entered into force on 1 July 1975: no call can open before it.
EARLIEST = dt.date(1975, 7, 1)
LATEST = dt.date(2100, 12, 31)

# Lists: marshmallow wraps only real ``str`` messages in one, and these are translated lazily.
_REQUIRED = {"required": [_l("Required.")]}
_DATE = {**_REQUIRED, "invalid": [_l("Enter a date as YYYY-MM-DD.")]}


def _title() -> Text:
    return Line(required=True, max_length=500, error_messages=_REQUIRED)


def _date() -> fields.Date:
    return fields.Date(
        required=True,
        error_messages=_DATE,
        validate=validate.Range(EARLIEST, LATEST, error=_l("Enter a date between 1975 and 2100.")),
    )


class CallSchema(Schema):
    """A new call: its Notification number, its title in the three languages, when it opens and closes.

    Unknown fields are rejected; the deadline may not fall before the opening date.
    """

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    notification = Line(
        required=True,
        max_length=40,
        error_messages=_REQUIRED,
        validate=validate.Regexp(r"^\d{4}/\d{3}$", error=_l("Use the form 2021/008.")),
    )
    title_en = _title()
    title_fr = _title()
    title_es = _title()
    opens_on = _date()
    deadline = _date()

    @validates_schema
    def _deadline_after_opening(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "opens_on" in data and "deadline" in data and data["deadline"] < data["opens_on"]:
            raise ValidationError([_l("The deadline cannot be before the opening date.")], "deadline")
