"""What a tier's index holds of a record: ``document_for(record, tier)``, built only from ``project``."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from flask_babel import force_locale

from .. import policy
from ..labels import VALUE_VOCABULARY, label
from ..models import SHOWN_RECORDS, Record
from ..services.records.shape import project
from ..vocab import LANGUAGES
from .analysis import PART

# Facet values are kept per document in this order (see ``Facets``).
FACET_NAMES = ("type", "party", "region", "language", "taxon", "year")


@lru_cache(maxsize=4096)
def _label_in_all_languages(vocabulary: str, value: str) -> str:
    names = []
    for language in LANGUAGES:
        with force_locale(language):
            names.append(label(vocabulary, value))
    return " ".join(dict.fromkeys(names))


def _detail_text(details: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    for name, value in details.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, dict):
                parts.extend(str(v) for v in item.values() if v)
            elif isinstance(item, str) and name in VALUE_VOCABULARY:
                parts.append(_label_in_all_languages(VALUE_VOCABULARY[name], item))
            elif item not in (None, ""):
                parts.append(str(item))
    return parts


def document_for(record: Record, tier: str) -> dict[str, Any] | None:
    """The document of ``record`` in the ``tier`` index, or None when the record does not belong there.

    Only published records visible at ``tier`` are indexed, and only through ``records.shape.project``:
    a field, file or translation the tier may not see never reaches its index.
    """
    if record.status != "published" or not policy.allows(tier, record.tier):
        return None
    view = project(record, policy.audience(tier))
    titles = [view.title, *(t["title"] for t in view.translations)]
    party = record.party if view.party_iso else None
    taxa_text = []
    taxon_keys: list[str] = []
    for taxon in view.taxa:
        taxa_text += [taxon["name"], taxon["common_en"], taxon["common_fr"], taxon["common_es"]]
        taxon_keys += [taxon["name"], taxon["genus"], taxon["family"]]
    file_ids = {f.id for f in view.files}
    file_texts = [f.text or "" for f in record.files if f.id in file_ids]
    body = [
        # Titles twice: a word of the title weighs more than one of the text, at no cost per query.
        *titles,
        *titles,
        view.summary,
        *(t["summary"] for t in view.translations),
        *view.issuing_bodies,
        *_detail_text({k: v for k, v in view.details.items() if k not in SHOWN_RECORDS}),
        # Of another record, only its title (and only if the tier may see that record: ``project``).
        *(other["title"] for name in SHOWN_RECORDS for other in view.details.get(name, [])),
        *(t for t in taxa_text if t),
        *([party.name_en, party.name_fr, party.name_es] if party else []),
        _label_in_all_languages("region", view.region) if view.region else "",
        _label_in_all_languages("type", view.type),
        *(f.title for f in view.files),
        *file_texts,
    ]
    body_text = PART.join(p for p in body if p)
    words = "\n".join([*titles, view.summary, *(t for t in taxa_text if t)])
    sort_key = (view.published_at.isoformat() if view.published_at else "") + f"|{view.year or 0:04d}"
    facets = (
        view.type,
        view.party_iso or "",
        view.region or "",
        tuple(view.languages),
        tuple(sorted({k for k in taxon_keys if k})),
        view.year or 0,
    )
    digest = hashlib.sha256(repr((body_text, words, facets, sort_key)).encode()).hexdigest()[:16]
    return {
        "id": record.id,
        "body": body_text,
        "pairs": body_text,
        "words": words,
        "facets": facets,
        "sort": sort_key,
        "digest": digest,
    }
