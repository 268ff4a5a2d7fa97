"""Helpers that templates use: labels, Party names, language links, file sizes."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, current_app, g, request, url_for
from flask_babel import format_decimal
from markupsafe import Markup
from sqlalchemy import select

from schemas.desk import AuditArgs, QueueArgs
from schemas.query import BrowseArgs, SearchArgs

from . import generation, policy
from .db import session
from .i18n import current_language
from .labels import LABELS, VALUE_VOCABULARY, label
from .models import Party
from .storage import extension_for


def _party_names() -> dict[str, dict[str, str]]:
    """Each Party's name by language, read once per content generation by each worker."""
    count = generation.current(session)
    kept = current_app.extensions.get("registry.party_names")
    if kept is not None and count is not None and kept[0] == count:
        return kept[1]
    names = {
        p.iso: {language: p.name(language) for language in ("en", "fr", "es")}
        for p in session.scalars(select(Party))
    }
    current_app.extensions["registry.party_names"] = (count, names)
    return names


def party_name(iso: str | None) -> str:
    """The Party's name in the page's language ('' for none); the names are read once per request."""
    if not iso:
        return ""
    if "party_names" not in g:
        g.party_names = _party_names()
    names = g.party_names.get(iso)
    return names.get(current_language(), names["en"]) if names else iso


# The query parameters links may carry over from the current URL: the filters the pages know, and
# the language. Anything else a visitor adds is dropped, above all url_for's own reserved arguments
# (``_method``, ``_anchor``, ``_external``, ``_scheme``), which would answer 500 or put another
# host, scheme or anchor into every link of the page.
QUERY_PARAMETERS = frozenset(
    {"lang"}
    | {
        field.data_key or name
        for schema in (BrowseArgs, SearchArgs, QueueArgs, AuditArgs)
        for name, field in schema().fields.items()
    }
)
# Characters that reorder the text around them (embeddings, overrides, isolates, marks): in a
# trail entry they could make an address or a detail read as something else.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def url_with(**changes: Any) -> str:
    """The current URL with some query parameters changed (None removes one); ``page`` resets unless given.

    Only ``QUERY_PARAMETERS`` are carried over from the current URL, and never one that would
    collide with the page's own path arguments.
    """
    view_args = request.view_args or {}
    args = {k: v for k, v in request.args.items() if k in QUERY_PARAMETERS and k not in view_args}
    if "page" not in changes:
        args.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            args.pop(key, None)
        else:
            args[key] = value
    return url_for(request.endpoint or "public.home", **view_args, **args)


def without_bidi(text: Any) -> Any:
    """``text`` with its bidirectional control characters shown as U+FFFD (markup stays markup)."""
    if text is None:
        return text
    shown = _BIDI_CONTROLS.sub("\ufffd", str(text))
    return Markup(shown) if isinstance(text, Markup) else shown


def file_size(size: int) -> str:
    """A human file size: 12 KB, 3.4 MB."""
    if size < 1024 * 1024:
        return f"{format_decimal(max(1, round(size / 1024)))} KB"
    return f"{format_decimal(round(size / (1024 * 1024), 1))} MB"


def file_kind(media_type: str) -> str:
    """A short name for an accepted media type: PDF, DOCX, ODT, XLSX, JPG, PNG."""
    return extension_for(media_type).lstrip(".").upper() or media_type


def may(action: str, obj: Any = None) -> bool:
    """Whether the current viewer may ``action`` ``obj``: the policy's answer, for templates."""
    from .auth import current_viewer

    return policy.can(current_viewer(), action, obj)


def init_app(app: Flask) -> None:
    """Make the helpers available in every template."""
    app.jinja_env.globals.update(
        label=label,
        labels=LABELS,
        value_vocabulary=VALUE_VOCABULARY,
        party_name=party_name,
        url_with=url_with,
        file_size=file_size,
        file_kind=file_kind,
        may=may,
    )
    app.jinja_env.filters["without_bidi"] = without_bidi
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
