"""``flask backup`` and ``flask restore``: a restored registry holds everything the backup held."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from registry import migrate, search
from registry.db import commit, get_engine, session
from registry.models import AuditEvent, File, Record, RecordTranslation, User

from .conftest import dispose, fresh_database, load_reference, login, make_app
from .factories import PASSWORD, import_payload, make_user, record_data

WORD = "quokkaguard"


def _rows(app: Flask) -> dict[str, list]:
    """What a restore must bring back: records, translations, files (with their bytes), users, the trail."""
    with app.app_context():
        files_dir = Path(app.config["FILES_DIR"])
        return {
            "records": session.execute(
                select(Record.id, Record.title, Record.tier).order_by(Record.id)
            ).all(),
            "translations": session.execute(
                select(
                    RecordTranslation.record_id, RecordTranslation.language, RecordTranslation.title
                ).order_by(RecordTranslation.record_id, RecordTranslation.language)
            ).all(),
            "files": [
                (
                    file.id,
                    file.tier,
                    file.sha256,
                    hashlib.sha256((files_dir / file.stored_name).read_bytes()).hexdigest(),
                )
                for file in session.scalars(select(File).order_by(File.id))
            ],
            "users": session.execute(
                select(User.email, User.role, User.password_hash).order_by(User.email)
            ).all(),
            "audit": session.execute(select(AuditEvent.id, AuditEvent.action).order_by(AuditEvent.id)).all(),
        }


def _source(app: Flask) -> None:
    """Records with a translation and files of every tier, users, and entries in the audit trail."""
    with app.app_context():
        import_payload(
            [
                record_data(
                    title=f"Holding seized {WORD} parrots",
                    translations=[
                        {"language": "fr", "title": "Garde des perroquets saisis", "summary": "Comment."}
                    ],
                    files=[
                        {"path": f"{tier}.pdf", "language": "en", "tier": tier, "text": f"{tier} guidance"}
                        for tier in ("public", "registered", "confidential")
                    ],
                ),
                record_data(
                    type="agreement", title="A placement agreement", confidentiality={"level": "confidential"}
                ),
            ]
        )
        make_user("enforcement")
        make_user("secretariat")
    # Signing in writes to the trail.
    assert login(app.test_client(), "enforcement-x@test.example", PASSWORD).status_code == 302


def _empty(request, backend: str, templates, folder: Path) -> Flask:  # type: ignore[no-untyped-def]
    """An application on a migrated database without a single row, in a new home."""
    return make_app(fresh_database(request, backend, templates, folder), folder / "home")


def test_a_restored_backup_holds_every_record_file_user_and_entry(
    request, backend, templates, app_factory, tmp_path
):
    source = app_factory("source")
    _source(source)
    staged = Path(source.config["FILES_DIR"]) / "staged" / "someone"
    staged.mkdir(parents=True)
    (staged / ("0" * 32)).write_text("a form in progress")
    before = _rows(source)
    assert all(before.values()) and len(before["files"]) == 3

    dest = tmp_path / "backup"
    result = source.test_cli_runner().invoke(args=["backup", str(dest)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((dest / "manifest.json").read_text())
    assert dest.stat().st_mode & 0o077 == 0, "only the owner may open a backup"
    assert manifest["backend"] == ("sqlite" if backend == "sqlite" else "postgresql")
    assert manifest["revision"] == _head() and manifest["app_version"] and manifest["created_at"]
    assert sorted(name for name in manifest["sha256"] if name.startswith("files/")) == sorted(
        f"files/{name}" for name in _stored_names(source)
    ), "every stored file, and no staged one"
    again = source.test_cli_runner().invoke(args=["backup", str(dest)])
    assert again.exit_code != 0 and "must be a new or empty folder" in again.output

    target = _empty(request, backend, templates, tmp_path / "target")
    try:
        result = target.test_cli_runner().invoke(args=["restore", str(dest)])
        assert result.exit_code == 0, result.output
        assert _rows(target) == before
        with target.app_context():
            assert not search.indexes().behind(session), (
                "the indexes were rebuilt, not left to the first search"
            )
        page = target.test_client().get(f"/search?q={WORD}").get_data(as_text=True)
        assert f"Holding seized {WORD} parrots" in page
        assert target.test_cli_runner().invoke(args=["index-status"]).exit_code == 0
        assert login(target.test_client(), "enforcement-x@test.example", PASSWORD).status_code == 302

        refused = target.test_cli_runner().invoke(args=["restore", str(dest)])
        assert refused.exit_code != 0 and "Traceback" not in refused.output
        assert "files folder" in refused.output and "is not empty" in refused.output
    finally:
        dispose(target)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_restore_refuses_a_damaged_backup_and_a_database_with_rows(
    request, backend, templates, app_factory, tmp_path
):
    source = app_factory("source")
    _source(source)
    dest = tmp_path / "backup"
    assert source.test_cli_runner().invoke(args=["backup", str(dest)]).exit_code == 0

    target = _empty(request, backend, templates, tmp_path / "target")
    try:
        damaged = sorted(dest.joinpath("files").iterdir())[1]
        original = damaged.read_bytes()
        damaged.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        result = target.test_cli_runner().invoke(args=["restore", str(dest)])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert f"files/{damaged.name} does not match its sha256" in result.output
        damaged.write_bytes(original)
        assert not any(Path(target.config["FILES_DIR"]).glob("*")), "nothing was written"

        with target.app_context():
            load_reference()
            commit()
        result = target.test_cli_runner().invoke(args=["restore", str(dest)])
        assert result.exit_code != 0 and "the database is not empty (table " in result.output
    finally:
        dispose(target)


def test_a_backup_of_an_older_schema_is_upgraded_on_restore(request, backend, templates, tmp_path):
    """The backup's own schema is restored, then the migrations bring it to this code's head."""
    url = _blank_database(request, backend, tmp_path / "old")
    old = make_app(url, tmp_path / "old" / "home")
    target = _empty(request, backend, templates, tmp_path / "target")
    try:
        with old.app_context():
            migrate.upgrade("0008")
            # Written as that older code would, by SQL on its own connection: this code's session
            # would also count the change in a table the older schema does not have.
            with get_engine().begin() as connection:
                connection.execute(
                    text(
                        "INSERT INTO parties (iso, region, name_en, name_fr, name_es) "
                        "VALUES ('ZA', 'africa', 'South Africa', 'Afrique du Sud', 'Sudáfrica')"
                    )
                )
        assert old.test_cli_runner().invoke(args=["backup", str(tmp_path / "backup")]).exit_code == 0
        result = target.test_cli_runner().invoke(args=["restore", str(tmp_path / "backup")])
        assert result.exit_code == 0, result.output
        with target.app_context():
            assert session.scalar(text("SELECT version_num FROM alembic_version")) == _head()
            assert session.scalar(text("SELECT name_en FROM parties WHERE iso = 'ZA'")) == "South Africa"
            assert session.scalar(select(func.count()).select_from(User)) == 0
    finally:
        dispose(old)
        dispose(target)


def _head() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head() or ""


def _stored_names(app: Flask) -> list[str]:
    with app.app_context():
        return list(session.scalars(select(File.stored_name)))


def _blank_database(request, backend: str, folder: Path) -> str:  # type: ignore[no-untyped-def]
    """A database without any table."""
    if backend == "sqlite":
        folder.mkdir(parents=True)
        return f"sqlite:///{folder / 'old.sqlite'}"
    server = request.getfixturevalue("postgres_url")
    engine = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE registry_backup_old_{os.getpid()}"))
    engine.dispose()
    return f"{server}/registry_backup_old_{os.getpid()}"
