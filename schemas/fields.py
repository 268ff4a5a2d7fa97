"""Field types shared by every schema: clean text, controlled vocabularies, tiers."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from marshmallow import ValidationError, fields, validate

# Control characters other than tab and newline have no place in registry text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Text(fields.String):
    """A string that is NFC-normalised and trimmed, rejects control characters, and has a maximum length."""

    def __init__(self, *, max_length: int = 20000, multiline: bool = True, **kwargs: Any) -> None:
        self.max_length = max_length
        self.multiline = multiline
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = unicodedata.normalize("NFC", text.replace("\r\n", "\n")).strip()
        if _CONTROL.search(text):
            raise ValidationError("Contains control characters, which are not allowed.")
        if not self.multiline and "\n" in text:
            raise ValidationError("Must be a single line.")
        if len(text) > self.max_length:
            raise ValidationError(f"Must be at most {self.max_length} characters long.")
        if self.required and not text:
            raise ValidationError("Must not be empty.")
        return text


def Line(**kwargs: Any) -> Text:  # noqa: N802 - a field factory reads like a field class
    """A single line of text, at most 500 characters unless told otherwise."""
    kwargs.setdefault("max_length", 500)
    return Text(multiline=False, **kwargs)


def Choice(choices: tuple[str, ...], **kwargs: Any) -> fields.String:  # noqa: N802
    """One value of a controlled vocabulary."""
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def Choices(choices: tuple[str, ...], **kwargs: Any) -> fields.List:  # noqa: N802
    """A list of distinct values of a controlled vocabulary."""
    kwargs.setdefault("load_default", list)
    return fields.List(Choice(choices), validate=_distinct, **kwargs)


def Lines(**kwargs: Any) -> fields.List:  # noqa: N802
    """A list of single lines of text (at most 100)."""
    kwargs.setdefault("load_default", list)
    return fields.List(Line(), validate=validate.Length(max=100), **kwargs)


def _distinct(values: list[Any]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("Values must not repeat.")
