"""The application starts on both backends and serves its main pages."""

from __future__ import annotations

from pathlib import Path

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


def test_a_home_made_by_make_run_runs_its_commands_in_development(monkeypatch, tmp_path):
    """The README's commands, typed in the folder where ``make run`` made its instance, need no
    settings; a SECRET_KEY or an explicit REGISTRY_ENV still decides."""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("REGISTRY_ENV", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"REGISTRY_HOME": str(tmp_path)})
    made = load_config({"REGISTRY_ENV": "development", "REGISTRY_HOME": str(tmp_path)})
    again = load_config({"REGISTRY_HOME": str(tmp_path)})
    assert (again["REGISTRY_ENV"], again["SECRET_KEY"]) == ("development", made["SECRET_KEY"])
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    assert load_config({"REGISTRY_HOME": str(tmp_path)})["REGISTRY_ENV"] == "production"
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.setenv("REGISTRY_ENV", "production")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config({"REGISTRY_HOME": str(tmp_path)})


def test_a_command_without_its_settings_says_why_in_one_line(tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "REGISTRY_HOME": str(tmp_path), "REGISTRY_ENV": "production"}
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "registry", "index-status"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "Error: SECRET_KEY is not set" in done.stderr
