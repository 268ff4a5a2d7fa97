"""Three languages are first class: complete catalogs, ``?lang=`` remembered, Accept-Language honoured."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parent.parent / "registry" / "translations"
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _catalog(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle)


def test_catalogs_are_up_to_date_with_the_code(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "lazy_gettext",
            "-k",
            "_l",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        check=True,
        capture_output=True,
        cwd=TRANSLATIONS.parent.parent,
    )
    with pot.open("rb") as handle:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    for language in ("fr", "es"):
        have = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog(language) if m.id}
        assert wanted - have == set(), f"{language}: run `make messages` and translate"


@pytest.mark.parametrize("language", ["fr", "es"])
def test_catalog_is_complete_and_keeps_placeholders(language):
    catalog = _catalog(language)
    assert len([m for m in catalog if m.id]) > 150
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{language}: untranslated {ids[0]!r}"
        assert "fuzzy" not in message.flags, f"{language}: fuzzy {ids[0]!r}"
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == wanted, f"{language}: placeholders of {ids[0]!r}"


def test_lang_parameter_switches_and_is_remembered(client):
    french = client.get("/?lang=fr")
    assert '<html lang="fr">' in french.get_data(as_text=True)
    assert "Parcourir les ressources" in french.get_data(as_text=True)
    assert "lang=fr" in french.headers["Set-Cookie"]
    again = client.get("/records").get_data(as_text=True)
    assert '<html lang="fr">' in again
    spanish = client.get("/records?lang=es").get_data(as_text=True)
    assert '<html lang="es">' in spanish and "Explorar los recursos" in spanish


def test_accept_language_is_honoured(client):
    page = client.get("/", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="es">' in page
    page = client.get("/", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_unknown_lang_is_ignored(client):
    page = client.get("/?lang=xx", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert '<html lang="fr">' in page


def test_party_and_labels_follow_the_language(app, client):
    page = client.get("/parties?lang=es").get_data(as_text=True)
    assert "Sudáfrica" in page and "América Central y del Sur y el Caribe" in page
    page = client.get("/parties?lang=fr").get_data(as_text=True)
    assert "Afrique du Sud" in page
