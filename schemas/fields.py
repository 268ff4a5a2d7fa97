"""Field types shared by every schema: clean text, controlled vocabularies, tiers, bounded numbers."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields, validate

from .messages import RANGE

# Control characters other than tab and newline have no place in registry text: the C0 set, DEL and
# the C1 set (NEL, U+0085, is a line break and is dealt with below).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f]")
# What else ends a line somewhere: str.splitlines(), mail headers and some mail software break at
# these. A carriage return on its own (old Mac files), the vertical tab and form feed that Word and PDF
# readers put into copied text for a line or page break, NEL (U+0085, from EBCDIC and some PDFs), and
# the Unicode line and paragraph separators.
_LINE_SEPARATORS = re.compile(r"[\r\x0b\x0c\x85\u2028]")
_PARAGRAPH_SEPARATOR = "\u2029"
# In single-line text they are refused (the vertical tab and form feed as control characters): there a
# separator would be invisible in the form but break a line in an e-mail subject or header.
_ANY_BREAK = re.compile(r"[\r\x85\u2028\u2029]")
# Halves of UTF-16 pairs cannot stand alone in text (JSON can still spell one, as "\\ud800").
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# The database's integer columns hold 32 bits; no bound of a number field may reach past them.
INT_MAX = 2**31 - 1


def clean_text(value: str, *, max_length: int, multiline: bool = True, required: bool = False) -> str:
    """``value`` NFC-normalised and trimmed, with its line breaks made ``\\n``; raise ValidationError.

    Multi-line text keeps its lines: a lone carriage return, a vertical tab, a form feed, NEL and
    U+2028 become a newline, and U+2029 an empty line between paragraphs. Single-line text refuses
    every line break, visible or not. Both refuse control characters, text longer than
    ``max_length`` and, when ``required``, nothing.
    """
    value = value.replace("\r\n", "\n")
    if multiline:
        value = _LINE_SEPARATORS.sub("\n", value).replace(_PARAGRAPH_SEPARATOR, "\n\n")
    text = unicodedata.normalize("NFC", value).strip()
    if _CONTROL.search(text):
        raise ValidationError([_l("Contains control characters, which are not allowed.")])
    if _SURROGATE.search(text):
        raise ValidationError([_l("Contains characters that are not valid text.")])
    if not multiline and _ANY_BREAK.search(text):
        raise ValidationError(
            [
                _l(
                    "Contains an invisible line or paragraph separator (often pasted from a word processor): "
                    "type the text on one line."
                )
            ]
        )
    if not multiline and "\n" in text:
        raise ValidationError([_l("Must be a single line.")])
    if len(text) > max_length:
        raise ValidationError([_l("Must be at most %(n)s characters long.", n=max_length)])
    if required and not text:
        raise ValidationError([_l("Must not be empty.")])
    return text


class Text(fields.String):
    """A string that is NFC-normalised and trimmed, rejects control characters, and has a maximum length."""

    def __init__(self, *, max_length: int = 20000, multiline: bool = True, **kwargs: Any) -> None:
        self.max_length = max_length
        self.multiline = multiline
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return clean_text(text, max_length=self.max_length, multiline=self.multiline, required=self.required)


def Line(**kwargs: Any) -> Text:  # noqa: N802 - a field factory reads like a field class
    """A single line of text, at most 500 characters unless told otherwise."""
    kwargs.setdefault("max_length", 500)
    return Text(multiline=False, **kwargs)


class Link(fields.URL):
    """An http(s) address: clean single-line text first (no NUL slips through the URL pattern), then a URL."""

    def __init__(self, *, max_length: int = 500, **kwargs: Any) -> None:
        self.max_length = max_length
        kwargs.setdefault("schemes", {"http", "https"})
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        text = clean_text(value, max_length=self.max_length, multiline=False)
        return super()._deserialize(text, attr, data, **kwargs)


class Email(Text):
    """An e-mail address of at most 254 characters (the longest one mail can carry), or nothing."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=254, multiline=False, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text:
            validate.Email()(text)
        return text


def Whole(minimum: int, maximum: int, **kwargs: Any) -> fields.Integer:  # noqa: N802
    """A whole number from ``minimum`` to ``maximum`` (which must fit the database's integer columns)."""
    if not -INT_MAX <= minimum <= maximum <= INT_MAX:
        raise ValueError("the bounds of a whole number must fit a 32-bit integer column")
    return fields.Integer(validate=validate.Range(minimum, maximum, error=RANGE), **kwargs)


def Between(minimum: float, maximum: float, **kwargs: Any) -> fields.Float:  # noqa: N802
    """A number from ``minimum`` to ``maximum`` (never NaN or infinite)."""
    return fields.Float(validate=validate.Range(minimum, maximum, error=RANGE), **kwargs)


def Choice(choices: tuple[str, ...], **kwargs: Any) -> fields.String:  # noqa: N802
    """One value of a controlled vocabulary."""
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def Choices(choices: tuple[str, ...], **kwargs: Any) -> fields.List:  # noqa: N802
    """A list of distinct values of a controlled vocabulary."""
    kwargs.setdefault("load_default", list)
    return fields.List(Choice(choices), validate=distinct, **kwargs)


def Lines(**kwargs: Any) -> fields.List:  # noqa: N802
    """A list of single lines of text (at most 100)."""
    kwargs.setdefault("load_default", list)
    return fields.List(Line(), validate=validate.Length(max=100), **kwargs)


def distinct(values: list[Any]) -> None:
    """Refuse a list in which a value repeats."""
    if len(set(values)) != len(values):
        raise ValidationError([_l("Values must not repeat.")])
