"""Shapes of the Secretariat desk's input: queue and trail filters, and the review forms."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate

from registry.models import looks_like_id
from registry.vocab import AUDIT_ACTIONS, LANGUAGES, RECORD_TYPES, TIERS

from .fields import Choice, Text
from .messages import RANGE

# The queue's age filter: submissions waiting longer than this many days.
AGES = (7, 30, 90)
PARTY = validate.Regexp(r"^[A-Z]{2}$")
# A list: marshmallow wraps only real ``str`` messages in one, and this one is translated lazily.
_REQUIRED = {"required": [_l("Required.")]}


def _record_id(value: str) -> None:
    if not looks_like_id(value, "r"):
        raise ValidationError([_l("Not a record id.")])


class QueueArgs(Schema):
    """Filters of the review queue; other parameters (e.g. ``lang``) are ignored."""

    class Meta:
        unknown = EXCLUDE

    party = fields.String(load_default=None, validate=PARTY)
    type = Choice(RECORD_TYPES, load_default=None)
    language = Choice(LANGUAGES, load_default=None)
    older_than = fields.Integer(load_default=None, validate=validate.OneOf(AGES))


class AuditArgs(Schema):
    """Filters and page of the audit trail."""

    class Meta:
        unknown = EXCLUDE

    action = Choice(AUDIT_ACTIONS, load_default=None)
    party = fields.String(load_default=None, validate=PARTY)
    record = fields.String(load_default=None, validate=_record_id)
    page = fields.Integer(load_default=1, validate=validate.Range(1, 100000, error=RANGE))


class ReturnForm(Schema):
    """Return a submission to its Party: the Secretariat's comment is required."""

    class Meta:
        unknown = RAISE

    comment = Text(required=True, max_length=5000, error_messages=_REQUIRED)


class WithdrawForm(Schema):
    """Withdraw a record: the reason is required and goes to the audit trail."""

    class Meta:
        unknown = RAISE

    reason = Text(required=True, max_length=5000, error_messages=_REQUIRED)


class PublishForm(Schema):
    """Publish a submission; the reason is needed only when the version makes something more open
    (the workflow service decides, and names the field)."""

    class Meta:
        unknown = RAISE

    reason = Text(load_default="", max_length=2000)


class TierChangeForm(Schema):
    """Give the record, one of its files or one of its sensitive field groups a tier, with a reason.

    ``target`` is ``record``, ``file:<file id>`` or ``field:<group>``.
    """

    class Meta:
        unknown = RAISE

    target = fields.String(
        required=True,
        error_messages=_REQUIRED,
        validate=validate.Regexp(r"^(record|file:f[0-9a-z]{12}|field:[a-z_]{1,40})$"),
    )
    tier = Choice(TIERS, required=True, error_messages=_REQUIRED)
    reason = Text(required=True, max_length=2000, error_messages=_REQUIRED)
