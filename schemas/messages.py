"""marshmallow's own messages, in the viewer's language: lazy strings in place of its English ones.

Imported first by ``schemas`` (fields take their messages when a schema class is defined). A lazy
string is translated when it is shown, in the language of the request showing it; a validator's
message is translated when the value is refused, with its bounds filled in. marshmallow fills in
the placeholders of a field's own messages only when they are plain strings, so none of those here
has one.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate


class Message(str):
    """A message of marshmallow's: English as a string (marshmallow wants one), and translated into
    the request's language when marshmallow fills it in (``format``), as it refuses a value."""

    def format(self, *args: Any, **kwargs: Any) -> str:
        return gettext(str(self)).format(*args, **kwargs)


class ChoiceMessage(Message):
    """A value outside a vocabulary: in a form, one of the values offered is to be chosen; a file
    imported on the command line is told the codes it may use."""

    def format(self, *args: Any, **kwargs: Any) -> str:
        if has_request_context():
            return super().format(*args, **kwargs)
        return "Must be one of: {choices}.".format(**kwargs)


def N_(text: str) -> Message:  # noqa: N802 - the name the catalog extraction looks for
    return Message(text)


# The message of a number out of bounds, filled in by ``validate.Range``.
RANGE = N_("Enter a number from {min} to {max}.")
CHOOSE = ChoiceMessage(N_("Choose one of the values offered."))

fields.Field.default_error_messages = {
    "required": N_("Missing data for required field."),
    "null": N_("Field may not be null."),
    "validator_failed": N_("Invalid value."),
}
fields.String.default_error_messages = {
    "invalid": N_("Not a valid string."),
    "invalid_utf8": N_("Not a valid utf-8 string."),
}
fields.Number.default_error_messages = {
    "invalid": N_("Not a valid number."),
    "too_large": N_("Number too large."),
}
fields.Integer.default_error_messages = {"invalid": N_("Not a valid integer.")}
fields.Float.default_error_messages = {
    "special": N_("Special numeric values (nan or infinity) are not permitted.")
}
fields.Boolean.default_error_messages = {"invalid": N_("Not a valid boolean.")}
fields.DateTime.default_error_messages = {
    **fields.DateTime.default_error_messages,
    "invalid": N_("Not a valid datetime."),
    "invalid_awareness": N_("Not a valid datetime."),
}
fields.Date.default_error_messages = {
    **fields.Date.default_error_messages,
    "invalid": N_("Not a valid date."),
}
fields.URL.default_error_messages = {"invalid": N_("Not a valid URL.")}
fields.Email.default_error_messages = {"invalid": N_("Not a valid email address.")}
fields.List.default_error_messages = {"invalid": N_("Not a valid list.")}
fields.Mapping.default_error_messages = {"invalid": N_("Not a valid mapping type.")}
fields.Nested.default_error_messages = {"type": N_("Invalid type.")}
# The schema's own messages are stored as they are, in a list: lazy strings then.
Schema._default_error_messages = {"type": _l("Invalid input type."), "unknown": _l("Unknown field.")}

validate.Length.message_min = N_("Shorter than minimum length {min}.")
validate.Length.message_max = N_("Longer than maximum length {max}.")
validate.Length.message_all = N_("Length must be between {min} and {max}.")
validate.Length.message_equal = N_("Length must be {equal}.")
validate.OneOf.default_message = CHOOSE
validate.Regexp.default_message = N_("String does not match expected pattern.")
validate.Email.default_message = N_("Not a valid email address.")
validate.URL.default_message = N_("Not a valid URL.")
