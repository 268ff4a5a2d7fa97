"""The application starts on both backends and serves its main pages."""

from __future__ import annotations

import pytest

from registry.config import ConfigError, load_config

from .factories import make_record


def test_main_pages_answer(app, client):
    with app.app_context():
        record = make_record()
        record_id = record.id
    for path in ["/", "/records", "/parties", "/parties/ZA", "/about", "/login", f"/records/{record_id}"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert b"Seized live-animal resources registry" in response.data


def test_production_refuses_to_start_without_secret_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"REGISTRY_ENV": "production", "REGISTRY_HOME": str(tmp_path)})


def test_development_key_is_random_and_kept(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path)})["SECRET_KEY"]
    again = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path)})["SECRET_KEY"]
    other = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path / "b")})["SECRET_KEY"]
    assert first == again != other and len(first) >= 32


def test_sqlite_pragmas(app):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite only")
    from sqlalchemy import text

    from registry.db import session

    with app.app_context():
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
