"""Shapes of a Party's small forms beside the record form: withdrawing a record."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema

from .fields import Text


class PartyWithdrawForm(Schema):
    """A Party withdraws its own record: the reason is optional and goes to the audit trail.

    Other form fields (the CSRF token) are ignored.
    """

    class Meta:
        unknown = EXCLUDE

    reason = Text(load_default="", max_length=5000)
