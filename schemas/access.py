"""Shapes of access requests: the public form (the CENcomm fields) and the Secretariat's decisions."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from marshmallow import RAISE, Schema, fields, validate

from registry.vocab import ORGANISATION_TYPES, REQUESTABLE_ROLES

from .fields import Choice, Email, Line, Text

# Lists: marshmallow wraps only real ``str`` messages in one, and these are translated lazily.
_REQUIRED = {"required": [_l("Required.")]}
PARTY = validate.Regexp(r"^[A-Z]{2}$", error=_l("Choose a Party from the list."))
# An international number as people write it: digits, spaces and + ( ) . - only.
PHONE = validate.Regexp(
    r"^\+?[0-9][0-9 ().-]{4,48}$", error=_l("Enter a telephone number, e.g. +41 22 917 81 39.")
)
LATEST = dt.date(2100, 12, 31)
# The form's fields in their order on the page.
REQUEST_FIELDS = (
    "country",
    "family_name",
    "given_name",
    "organisation",
    "organisation_type",
    "function",
    "phone",
    "email",
    "role",
    "justification",
    "consent",
)


def _line(max_length: int) -> Line:  # type: ignore[valid-type]
    return Line(required=True, max_length=max_length, error_messages=_REQUIRED)


class AccessRequestForm(Schema):
    """What someone asking for access gives: who they are, where they work, the role and why.

    Every field is required; the consent checkbox must be ticked. Unknown fields are rejected.
    """

    class Meta:
        unknown = RAISE

    country = fields.String(required=True, validate=PARTY, error_messages=_REQUIRED)
    family_name = _line(100)
    given_name = _line(100)
    organisation = _line(200)
    organisation_type = Choice(
        ORGANISATION_TYPES,
        required=True,
        error_messages={"required": [_l("Choose the type of organisation.")]},
    )
    function = _line(200)
    phone = Line(required=True, max_length=50, validate=PHONE, error_messages=_REQUIRED)
    email = Email(required=True, error_messages=_REQUIRED)
    role = Choice(
        REQUESTABLE_ROLES, required=True, error_messages={"required": [_l("Choose the access you need.")]}
    )
    justification = Text(required=True, max_length=2000, error_messages=_REQUIRED)
    consent = fields.Boolean(
        required=True,
        truthy={"yes"},
        falsy=set(),
        error_messages={
            "required": [_l("Tick the box to consent, or the request cannot be sent.")],
            "invalid": [_l("Tick the box to consent, or the request cannot be sent.")],
        },
    )


class AcceptForm(Schema):
    """The Secretariat's acceptance: the role, the Party (for a Party user) and when access ends."""

    class Meta:
        unknown = RAISE

    role = Choice(REQUESTABLE_ROLES, required=True, error_messages=_REQUIRED)
    party = fields.String(load_default=None, validate=PARTY)
    expires_on = fields.Date(
        required=True,
        error_messages={**_REQUIRED, "invalid": [_l("Enter a date as YYYY-MM-DD.")]},
        validate=validate.Range(max=LATEST, error=_l("Enter a date before 2101.")),
    )


class DeclineForm(Schema):
    """The Secretariat's refusal: the reason is required and is sent to the requester."""

    class Meta:
        unknown = RAISE

    reason = Text(required=True, max_length=2000, error_messages=_REQUIRED)
