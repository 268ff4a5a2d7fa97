"""Validation messages that reach users in English from the schemas, marshmallow and the services.

They are listed here so that ``make messages`` puts them in the catalogs; the form views
translate them when they render (``views.forms.localize``). Messages with a variable part
appear in their catalog form, with ``%(n)s`` where the value goes.
"""

from __future__ import annotations

import re

from flask_babel import gettext


def N_(message: str) -> str:  # noqa: N802 - the conventional name of a gettext no-op marker
    """Mark ``message`` for extraction; it is translated where it is shown."""
    return message


MESSAGES = (
    # schemas/fields.py and schemas/common.py, schemas/types.py
    N_("Contains control characters, which are not allowed."),
    N_("Contains characters that are not valid text."),
    N_(
        "Contains an invisible line or paragraph separator (often pasted from a word processor): "
        "type the text on one line."
    ),
    N_("Must be a single line."),
    N_("Must be at most %(n)s characters long."),
    N_("Must not be empty."),
    N_("Values must not repeat."),
    N_("Unknown record type."),
    N_("A record must be a JSON object."),
    N_("A national record needs its Party."),
    N_("A regional record without a Party needs its region."),
    N_("Give each other language once, and not the original language."),
    N_("Use a two-letter ISO code."),
    N_("Use lowercase letters, digits and hyphens."),
    N_("The period cannot end before it starts."),
    N_("The agreement cannot end before it starts."),
    N_("Unknown field: %(n)s."),
    N_("Enter a number from %(min)s to %(max)s."),
    # marshmallow's own messages
    N_("Missing data for required field."),
    N_("Field may not be null."),
    N_("Unknown field."),
    N_("Not a valid string."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid date."),
    N_("Not a valid datetime."),
    N_("Not a valid URL."),
    N_("Not a valid email address."),
    N_("Not a valid list."),
    N_("Not a valid mapping type."),
    N_("Invalid input type."),
    N_("Invalid value."),
    N_("Choose one of the values offered."),
    N_("Out of range."),
    N_("Longer than maximum length %(n)s."),
    N_("Shorter than minimum length %(n)s."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("Number too large."),
    N_("Invalid type."),
    N_("Not a valid boolean."),
    N_("Not a valid utf-8 string."),
    N_("String does not match expected pattern."),
    # the services
    N_("Not a CITES Party in the registry."),
    N_("Not in the taxon checklist: %(n)s."),
    N_("%(n)s is not a rescue centre."),
    N_("Give the reason (at most 2000 characters)."),
    N_("Only a submitted record can be published."),
    N_("Only a submitted record can be returned."),
    N_("Say what the Party should change."),
    N_("This record has no such confidential field."),
    N_("Unknown tier."),
    N_("This version no longer passes the checks; return it to the Party."),
    N_("%(n)s is not a file of this record."),
    N_("The same file is listed twice."),
    N_(
        "This upload was already saved with a record (the form was probably sent twice). "
        "Upload the file again to add it here."
    ),
)


# Messages of the schemas and of marshmallow, with their variable parts, mapped to catalog entries.
# The named groups fill the placeholders of the same name (``n`` when the group has no name).
_NUMBER = r"-?\d+(?:\.\d+)?"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Must be at most (\d+) characters long\.$"), "Must be at most %(n)s characters long."),
    (re.compile(r"^Not in the taxon checklist: (.+)\.$"), "Not in the taxon checklist: %(n)s."),
    (re.compile(r"^(\S+) is not a rescue centre\.$"), "%(n)s is not a rescue centre."),
    (re.compile(r"^(\S+) is not a file of this record\.$"), "%(n)s is not a file of this record."),
    (re.compile(r"^Must be one of: (.+)\.$"), "Choose one of the values offered."),
    (
        re.compile(rf"^Enter a number from (?P<min>{_NUMBER}) to (?P<max>{_NUMBER})\.$"),
        "Enter a number from %(min)s to %(max)s.",
    ),
    (
        re.compile(
            rf"^Must be greater than or equal to (?P<min>{_NUMBER}) "
            rf"and less than or equal to (?P<max>{_NUMBER})\.$"
        ),
        "Enter a number from %(min)s to %(max)s.",
    ),
    (re.compile(r"^Must be (?:greater|less) than (?:or equal to )?(\S+)\.$"), "Out of range."),
    (re.compile(r"^Unknown field: (.+)\.$"), "Unknown field: %(n)s."),
    (re.compile(r"^Longer than maximum length (\d+)\.$"), "Longer than maximum length %(n)s."),
    (re.compile(r"^Shorter than minimum length (\d+)\.$"), "Shorter than minimum length %(n)s."),
)


def catalog_entry(message: str) -> tuple[str, dict[str, str]]:
    """The catalog id of a message of the schemas, marshmallow or the services, and its variable parts."""
    for pattern, msgid in _PATTERNS:
        match = pattern.match(message)
        if match:
            params = match.groupdict() or {"n": match.group(1)}
            return msgid, params if "%(" in msgid else {}
    return message, {}


def localize(message: str) -> str:
    """The message in the viewer's language (schema messages are English catalog ids)."""
    msgid, params = catalog_entry(message)
    return gettext(msgid, **params)
