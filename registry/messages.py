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
    # the services
    N_("Not a CITES Party in the registry."),
    N_("Not in the taxon checklist: %(n)s."),
    N_("%(n)s is not a rescue centre."),
    N_("A tier can only be raised here."),
    N_("Give the reason (at most 2000 characters)."),
    N_("Only a submitted record can be published."),
    N_("Only a submitted record can be returned."),
    N_("Say what the Party should change."),
    N_("This record has no such confidential field."),
    N_("Unknown tier."),
    N_("This version no longer passes the checks; return it to the Party."),
)


# Messages of the schemas and of marshmallow, with their variable parts, mapped to catalog entries.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^Must be at most (\d+) characters long\.$"), "Must be at most %(n)s characters long."),
    (re.compile(r"^Not in the taxon checklist: (.+)\.$"), "Not in the taxon checklist: %(n)s."),
    (re.compile(r"^(\S+) is not a rescue centre\.$"), "%(n)s is not a rescue centre."),
    (re.compile(r"^Must be one of: (.+)\.$"), "Choose one of the values offered."),
    (
        re.compile(r"^Must be greater than or equal to (\S+) and less than or equal to (\S+)\.$"),
        "Out of range.",
    ),
    (re.compile(r"^Must be greater than or equal to (\S+)\.$"), "Out of range."),
    (re.compile(r"^Unknown field: (.+)\.$"), "Unknown field: %(n)s."),
)


def localize(message: str) -> str:
    """The message in the viewer's language (schema messages are English catalog ids)."""
    for pattern, msgid in _PATTERNS:
        match = pattern.match(message)
        if match:
            return gettext(msgid, n=match.group(1)) if "%(n)s" in msgid else gettext(msgid)
    return gettext(message)
