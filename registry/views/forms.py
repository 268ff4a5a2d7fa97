"""The record form: HTML form fields to and from the JSON shape that ``schemas`` validate.

The form has no rules of its own. Its type-specific fields are derived from the marshmallow
details schema of the record type, so forms, import and the API accept exactly the same data.
Every value is kept as the user typed it, so a form with errors comes back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext
from marshmallow import fields as mm
from marshmallow import validate
from werkzeug.datastructures import MultiDict

from schemas import DETAILS_SCHEMAS
from schemas.fields import Text

from .. import policy
from ..labels import VALUE_VOCABULARY, label
from ..services.records import read
from ..vocab import JUSTIFICATIONS, LANGUAGES, TIERS


@dataclass(frozen=True)
class Widget:
    """One form control of a record's details."""

    name: str  # the dotted path in the JSON shape, e.g. "details.lead_agency"
    kind: str  # line, text, select, checkboxes, lines, number, date, url, contacts, members
    required: bool = False
    choices: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def attr(self) -> str:
        """The detail attribute's name."""
        return self.name.rsplit(".", 1)[-1]


def _choices_of(schema_field: mm.Field) -> tuple[str, ...]:
    validators = getattr(schema_field, "validators", [])
    for validator in validators:
        if isinstance(validator, validate.OneOf):
            return tuple(validator.choices)
    return ()


def detail_widgets(record_type: str) -> list[Widget]:
    """The controls of ``record_type``'s details, in the schema's order."""
    widgets = []
    for name, schema_field in DETAILS_SCHEMAS[record_type]._declared_fields.items():
        path = f"details.{name}"
        vocabulary = VALUE_VOCABULARY.get(name, "")
        if name == "members":
            widgets.append(Widget(path, "members"))
        elif isinstance(schema_field, mm.List):
            inner = schema_field.inner
            if isinstance(inner, mm.Nested):
                widgets.append(Widget(path, "contacts"))
            elif _choices_of(inner):
                options = tuple((v, label(vocabulary, v)) for v in _choices_of(inner))
                widgets.append(Widget(path, "checkboxes", choices=options))
            else:
                widgets.append(Widget(path, "lines"))
        elif _choices_of(schema_field):
            options = tuple((v, label(vocabulary, v)) for v in _choices_of(schema_field))
            widgets.append(Widget(path, "select", schema_field.required, options))
        elif isinstance(schema_field, mm.Integer | mm.Float):
            widgets.append(Widget(path, "number"))
        elif isinstance(schema_field, mm.Date):
            widgets.append(Widget(path, "date"))
        elif isinstance(schema_field, mm.URL):
            widgets.append(Widget(path, "url"))
        elif isinstance(schema_field, Text) and schema_field.multiline:
            widgets.append(Widget(path, "text", schema_field.required))
        else:
            widgets.append(Widget(path, "line", schema_field.required))
    return widgets


_CONTACT_KEYS = ("name", "function", "email", "phone")


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace("\r\n", "\n").split("\n") if line.strip()]


def _optional(value: str) -> str | None:
    return value.strip() or None


def shape_from_form(record_type: str, party: str | None, form: MultiDict) -> dict[str, Any]:
    """The JSON shape of what the form says (unvalidated: ``schemas.load_record`` checks it)."""
    language = form.get("language", "")
    details: dict[str, Any] = {}
    for widget in detail_widgets(record_type):
        raw = form.get(widget.name, "")
        if widget.kind in ("checkboxes", "members"):
            details[widget.attr] = form.getlist(widget.name)
        elif widget.kind == "lines":
            details[widget.attr] = _lines(raw)
        elif widget.kind == "contacts":
            details[widget.attr] = [
                dict(zip(_CONTACT_KEYS, [p.strip() for p in line.split("|")] + [""] * 3, strict=False))
                for line in _lines(raw)
            ]
        elif widget.kind in ("number", "date", "url", "select"):
            details[widget.attr] = _optional(raw)
        else:
            details[widget.attr] = raw
    translations = [
        {
            "language": lang,
            "title": form.get(f"translations.{lang}.title", ""),
            "summary": form.get(f"translations.{lang}.summary", ""),
        }
        for lang in LANGUAGES
        if lang != language and form.get(f"translations.{lang}.title", "").strip()
    ]
    field_tiers = {
        group: form.get(f"confidentiality.fields.{group}", policy.DEFAULT_FIELD_TIER)
        for group in policy.SENSITIVE_FIELDS.get(record_type, {})
    }
    return {
        "type": record_type,
        "title": form.get("title", ""),
        "summary": form.get("summary", ""),
        "language": language or None,
        "translations": translations,
        "party": party,
        **_scope_and_region(party, form),
        "issuing_bodies": _lines(form.get("issuing_bodies", "")),
        "year": _optional(form.get("year", "")),
        "date": _optional(form.get("date", "")),
        "taxa": _lines(form.get("taxa", "")),
        "confidentiality": {
            "level": form.get("confidentiality.level") or None,
            "rule": form.get("confidentiality.rule", ""),
            "justification": form.get("confidentiality.justification", ""),
            "disclosure_date": _optional(form.get("confidentiality.disclosure_date", "")),
            "fields": field_tiers,
        },
        "details": details,
    }


def _scope_and_region(party: str | None, form: MultiDict) -> dict[str, Any]:
    """A Party's record is national, in the Party's CITES region (not asked: as the service stores
    it, so a revision does not seem to move it). A record without a Party (the Secretariat's) is
    global or regional, as the form says; only a regional one names a region."""
    if party:
        return {"scope": "national", "region": read.get_party(party).region}
    scope = form.get("scope") or "global"
    return {"scope": scope, "region": _optional(form.get("region", "")) if scope == "regional" else None}


def form_from_shape(shape: dict[str, Any]) -> MultiDict:
    """Form values that show ``shape`` (a record or revision in the JSON shape)."""
    values = MultiDict()
    values["scope"] = shape.get("scope") or ""
    values["region"] = shape.get("region") or ""
    for key in ("title", "summary", "language"):
        values[key] = shape.get(key) or ""
    values["year"] = "" if shape.get("year") is None else str(shape["year"])
    values["date"] = shape.get("date") or ""
    values["issuing_bodies"] = "\n".join(shape.get("issuing_bodies") or [])
    values["taxa"] = "\n".join(shape.get("taxa") or [])
    for t in shape.get("translations") or []:
        values[f"translations.{t['language']}.title"] = t["title"]
        values[f"translations.{t['language']}.summary"] = t.get("summary", "")
    conf = shape.get("confidentiality") or {}
    values["confidentiality.level"] = conf.get("level") or ""
    values["confidentiality.rule"] = conf.get("rule") or ""
    values["confidentiality.justification"] = conf.get("justification") or ""
    values["confidentiality.disclosure_date"] = conf.get("disclosure_date") or ""
    for group, tier in (conf.get("fields") or {}).items():
        values[f"confidentiality.fields.{group}"] = tier
    details = shape.get("details") or {}
    for widget in detail_widgets(shape["type"]):
        value = details.get(widget.attr)
        if widget.kind in ("checkboxes", "members"):
            values.setlist(widget.name, list(value or []))
        elif widget.kind == "lines":
            values[widget.name] = "\n".join(value or [])
        elif widget.kind == "contacts":
            values[widget.name] = "\n".join(
                " | ".join(str(c.get(k) or "") for k in _CONTACT_KEYS).rstrip(" |") for c in value or []
            )
        else:
            values[widget.name] = "" if value is None else str(value)
    return values


def new_form(record_type: str) -> MultiDict:
    """The values of an empty form: the type's default tiers, as the policy states them."""
    values = MultiDict()
    values["confidentiality.level"] = policy.DEFAULT_RECORD_TIER.get(record_type, policy.PUBLIC)
    for group in policy.SENSITIVE_FIELDS.get(record_type, {}):
        values[f"confidentiality.fields.{group}"] = policy.DEFAULT_FIELD_TIER
    return values


def field_errors(messages: Any, shape: dict[str, Any]) -> dict[str, list[str]]:
    """marshmallow's nested messages as {form field name: [translated messages]}."""
    languages = [t["language"] for t in shape.get("translations", [])]
    flat: dict[str, list[str]] = {}

    def walk(path: list[str], value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(path if key == "_schema" else [*path, str(key)], inner)
            return
        texts = value if isinstance(value, list) else [value]
        name, prefix = _field_name(path, languages)
        for text in texts:
            if isinstance(text, dict):
                walk(path, text)
            else:
                flat.setdefault(name, []).append(prefix + str(text))

    walk([], messages)
    return flat


def _field_name(path: list[str], languages: list[str]) -> tuple[str, str]:
    """The form control a message belongs to, and a prefix locating it inside a list."""
    if not path:
        return "_form", ""
    if path[0] == "translations" and len(path) >= 3 and path[1].isdigit():
        index = int(path[1])
        lang = languages[index] if index < len(languages) else LANGUAGES[0]
        return f"translations.{lang}.{path[2]}", ""
    if path[0] in ("taxa", "issuing_bodies") and len(path) > 1:
        return path[0], gettext("Line %(n)s: ", n=int(path[1]) + 1) if path[1].isdigit() else ""
    if path[0] == "details" and len(path) > 2 and path[2].isdigit():
        return f"details.{path[1]}", gettext("Line %(n)s: ", n=int(path[2]) + 1)
    if path[0] == "confidentiality" and len(path) > 1:
        return "confidentiality." + path[1], ""
    return ".".join(path), ""


def justification_choices() -> list[tuple[str, str]]:
    """The short list of reasons for confidentiality, with their labels."""
    return [(value, label("justification", value)) for value in JUSTIFICATIONS]


def tier_choices() -> list[tuple[str, str]]:
    """The three tiers with their labels."""
    return [(tier, label("tier", tier)) for tier in TIERS]


def check_form_only(form: MultiDict) -> dict[str, list[str]]:
    """Rules the form adds to the schema: the justification comes from the short list."""
    errors: dict[str, list[str]] = {}
    value = form.get("confidentiality.justification", "")
    if value and value not in JUSTIFICATIONS:
        errors["confidentiality.justification"] = [gettext("Choose one of the values offered.")]
    return errors
