"""The common core of every record's JSON shape."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from registry.policy import SENSITIVE_FIELDS
from registry.vocab import JUSTIFICATIONS, LANGUAGES, RECORD_TYPES, REGIONS, SCOPES, STATUSES, TIERS

from .fields import Choice, Line, Lines, Text, Whole

REF = validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,63}$", error=_l("Use lowercase letters, digits and hyphens."))
# A record is written in one of the three languages; a language version of its document may also be
# in another one (a Portuguese original beside the English translation, say): "other".
OTHER_LANGUAGE = "other"
FILE_LANGUAGES = (*LANGUAGES, OTHER_LANGUAGE)


class TranslationSchema(Schema):
    """A record's title and summary in another language."""

    language = Choice(LANGUAGES, required=True)
    title = Line(required=True, max_length=1000)
    summary = Text(load_default="", max_length=20000)


class ConfidentialitySchema(Schema):
    """The confidentiality block: level, the Party's own rule, justification, disclosure date, field tiers."""

    level = Choice(TIERS, load_default=None)
    rule = Text(load_default="", max_length=5000)
    # One reason of the short list, or none when everything is public; the Party's own words go in ``rule``.
    justification = fields.String(
        load_default="",
        validate=validate.OneOf(("", *JUSTIFICATIONS)),
    )
    disclosure_date = fields.Date(load_default=None, allow_none=True)
    field_tiers = fields.Dict(
        keys=fields.String(), values=Choice(TIERS), load_default=dict, data_key="fields"
    )


class FileEntrySchema(Schema):
    """What a Party says of a language version of a document: its title, language and tier.

    The submission form checks each of its files with this; import and export use it through
    ``FileSchema``, so the three accept exactly the same values.
    """

    title = Line(load_default="", max_length=1000)
    language = Choice(FILE_LANGUAGES, required=True)
    tier = Choice(TIERS, load_default="public")


class FileSchema(FileEntrySchema):
    """A language version of a document. ``path`` is relative to the JSON file that names it."""

    id = fields.String(dump_only=True)
    path = Line(required=True, max_length=1000)
    size = fields.Integer(dump_only=True)
    sha256 = fields.String(dump_only=True)
    media_type = fields.String(dump_only=True)
    original_name = fields.String(dump_only=True)


class TaxonRefSchema(Schema):
    """A taxon as exported: its scientific name with rank and Appendix."""

    name = fields.String()
    rank = fields.String()
    appendix = fields.String(allow_none=True)


class RecordSchema(Schema):
    """Fields every resource type shares. Subclasses set ``details`` to their own nested schema."""

    id = fields.String(dump_only=True)
    ref = fields.String(load_only=True, validate=REF)
    type = Choice(RECORD_TYPES, required=True)
    title = Line(required=True, max_length=1000)
    summary = Text(load_default="", max_length=20000)
    language = Choice(LANGUAGES, required=True)
    translations = fields.List(fields.Nested(TranslationSchema), load_default=list)
    party = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error=_l("Use a two-letter ISO code.")),
    )
    scope = Choice(SCOPES, load_default="national")
    region = Choice(REGIONS, load_default=None, allow_none=True)
    issuing_bodies = Lines()
    year = Whole(1950, 2100, load_default=None, allow_none=True)
    date = fields.Date(load_default=None, allow_none=True)
    taxa = fields.List(Line(max_length=200), load_default=list, validate=validate.Length(max=500))
    status = Choice(STATUSES, load_default=None)
    confidentiality = fields.Nested(ConfidentialitySchema, load_default=dict)
    details = fields.Dict(load_default=dict)
    files = fields.List(fields.Nested(FileSchema), load_default=list)
    published_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    @validates_schema
    def _check_core(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors: dict[str, Any] = {}
        scope, party = data.get("scope"), data.get("party")
        if scope == "national" and not party:
            errors["party"] = [_l("A national record needs its Party.")]
        if scope == "regional" and not party and not data.get("region"):
            errors["region"] = [_l("A regional record without a Party needs its region.")]
        translations = [t["language"] for t in data.get("translations", [])]
        if data.get("language") in translations or len(set(translations)) != len(translations):
            errors["translations"] = [_l("Give each other language once, and not the original language.")]
        groups = SENSITIVE_FIELDS.get(data.get("type", ""), {})
        unknown = sorted(set(data.get("confidentiality", {}).get("field_tiers", {})) - set(groups))
        if unknown:
            errors["confidentiality"] = {"fields": [_l("Unknown field: %(n)s.", n=", ".join(unknown))]}
        if errors:
            raise ValidationError(errors)
