"""Reference and demo data: complete Parties and taxa, a demo set that covers the registry, real files."""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

import seed
from registry.db import session
from registry.models import File, Party, Record, Taxon
from registry.vocab import RECORD_TYPES, REGIONS

from .conftest import BACKENDS, dispose, fresh_database, login, make_app

ACCOUNT = re.compile(r"^\s+(\S+@demo\.example)\s+(\S+)\s+(\w+)", re.MULTILINE)


def test_parties_cover_every_region_in_three_languages():
    parties = seed.read_json("parties.json")
    codes = [p["iso"] for p in parties]
    assert len(codes) == len(set(codes)) >= 184
    assert "EU" in codes
    assert {p["region"] for p in parties} == set(REGIONS)
    assert all(p["name_en"] and p["name_fr"] and p["name_es"] for p in parties)


def test_taxa_checklist():
    taxa = seed.read_json("taxa.json")
    names = [t["name"] for t in taxa]
    assert len(names) == len(set(names)) >= 150
    assert all(t["common_en"] and t["common_fr"] and t["common_es"] for t in taxa)
    assert {t["appendix"] for t in taxa} <= {"I", "II", "III", None}
    classes = Counter(t["class"] for t in taxa)
    for group in ("Aves", "Mammalia", "Reptilia", "Amphibia"):
        assert classes[group] >= 10


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request, templates, tmp_path_factory):
    """One seeded registry per backend for the module (seeding costs seconds); the last test re-seeds."""
    folder = tmp_path_factory.mktemp("seed")
    application = make_app(fresh_database(request, request.param, templates, folder), folder / "home")
    result = application.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    yield application, result.output
    dispose(application)


@pytest.fixture
def app(demo):
    return demo[0]


@pytest.fixture
def seeded(demo):
    return demo[1]


def test_demo_set_covers_the_registry(app, seeded):
    with app.app_context():
        records = session.scalars(select(Record)).all()
        types = Counter(r.type for r in records)
        languages = Counter(r.language for r in records)
        parties = {r.party_iso for r in records if r.party_iso}
        regions = {session.get(Party, iso).region for iso in parties}
        assert len(records) >= 60
        assert set(types) == set(RECORD_TYPES)
        assert types["rescue_centre"] >= 10 and types["network"] >= 3 and types["agreement"] >= 5
        assert all(r.tier == "confidential" for r in records if r.type == "agreement")
        assert len(parties) >= 25 and regions == set(REGIONS)
        assert min(languages[code] for code in ("en", "fr", "es")) >= 15
        assert sum(r.tier == "registered" for r in records) >= 1
        public_with_confidential_file = [
            r for r in records if r.tier == "public" and any(f.tier == "confidential" for f in r.files)
        ]
        assert len(public_with_confidential_file) >= 1
        titles = " ".join(r.title for r in records)
        assert "IUCN" in titles and "17.8" in titles
        assert session.scalar(select(func.count()).select_from(Taxon)) >= 150


def test_demo_files_are_real_documents_that_say_what_they_are(app, seeded):
    with app.app_context():
        files = session.scalars(select(File)).all()
        assert files
        kinds = Counter(f.media_type for f in files)
        assert kinds["application/pdf"] and any("word" in k for k in kinds)
        folder = Path(app.config["FILES_DIR"])
        for file in files:
            data = (folder / file.stored_name).read_bytes()
            if file.media_type == "application/pdf":
                assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
                assert b"Tj" in data
            else:
                with zipfile.ZipFile(folder / file.stored_name) as archive:
                    assert "<w:t" in archive.read("word/document.xml").decode()


def test_seed_prints_working_demo_accounts_with_fresh_passwords(app, runner, seeded, client):
    accounts = ACCOUNT.findall(seeded)
    assert {role for _, _, role in accounts} == {"reader", "enforcement", "party", "secretariat"}
    email, password, _ = accounts[0]
    assert login(client, email, password).status_code == 302
    again = runner.invoke(args=["seed"])
    assert again.exit_code == 0 and "demo records not loaded again" in again.output
    new_passwords = {e: p for e, p, _ in ACCOUNT.findall(again.output)}
    assert new_passwords[email] != password
    other = app.test_client()
    assert login(other, email, password).status_code == 400
    assert login(other, email, new_passwords[email]).status_code == 302
    with app.app_context():
        assert session.scalar(select(func.count()).select_from(Record)) == len(
            seed.read_json("demo.json")["records"]
        )
