"""Shapes of query strings: browse filters, pagination and the taxon picker."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from registry.vocab import RECORD_TYPES, REGIONS

from .common import FILE_LANGUAGES
from .fields import Choice, Line, Text
from .messages import RANGE


class BrowseArgs(Schema):
    """Filters of ``/records``; links may carry other parameters (e.g. ``lang``), which are ignored."""

    class Meta:
        unknown = EXCLUDE

    type = Choice(RECORD_TYPES, load_default=None)
    party = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Z]{2}$"))
    region = Choice(REGIONS, load_default=None)
    # A record is readable in a language through its text, a translation or a file; files may be "other".
    language = Choice(FILE_LANGUAGES, load_default=None)
    taxon = Line(load_default=None, max_length=200)
    year = fields.Integer(load_default=None, validate=validate.Range(1950, 2100, error=RANGE))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 10000, error=RANGE))


class SearchArgs(BrowseArgs):
    """The search page: free text, the browse filters, a sort order."""

    q = Text(load_default="", max_length=500, multiline=False)
    sort = Choice(("relevance", "date"), load_default="relevance")
    page = fields.Integer(load_default=1, validate=validate.Range(1, 500, error=RANGE))


class TaxonQueryArgs(Schema):
    """What the taxon picker looks for: part of a scientific or common name (other parameters ignored)."""

    class Meta:
        unknown = EXCLUDE

    q = Line(load_default="", max_length=100)
