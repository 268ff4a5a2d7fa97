"""Backups: ``flask --app registry backup DEST`` and ``restore SRC``.

A backup is a folder holding a consistent copy of the database (SQLite's online backup API, or
``pg_dump`` in its custom format), the stored files of ``FILES_DIR``, and ``manifest.json``: the
sha256 of every file, the schema's Alembic revision, the app's version, the date and the backend.
The database is copied first and the files after it: stored files are never changed once written
and are deleted only by the sweep, once no row has named them for hours, so every file the copied
database names is there. Staged uploads (``FILES_DIR/staged``, and files still being written) are
left out: they belong to forms in progress, whose signed tokens die within hours, and the sweep
would remove them from the restored home anyway. The search indexes are derived and rebuilt on
restore; the development key and the mail outbox are not part of a backup.

A restore checks every sha256 of the manifest before it writes anything, goes only into an empty
database and files folder, brings an older schema up to date and rebuilds the search indexes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import tomllib
from contextlib import closing
from pathlib import Path
from typing import Any

import click
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import URL, make_url

from . import ROOT, migrate, search, storage
from .db import get_engine, session

MANIFEST = "manifest.json"
FORMAT = 1
FILES = "files"
DATABASE = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
PG_BIN = Path("/usr/lib/postgresql/15/bin")
_CHUNK = 1024 * 1024
_TRIGGER_FUNCTIONS = (
    "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = current_schema() AND p.prorettype = 'trigger'::regtype"
)


class BackupError(RuntimeError):
    """A backup or a restore cannot go on; the message says why in one line."""


def make_backup(dest: Path) -> dict[str, Any]:
    """Write a backup of the current application's database and files into ``dest``; return its manifest.

    Raises BackupError when ``dest`` is neither new nor an empty folder, or the database cannot be copied.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} must be a new or empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    # A backup holds confidential records and password hashes: only its owner may open the folder.
    dest.chmod(0o700)
    url = make_url(current_app.config["DATABASE_URL"])
    backend = _backend(url)
    with get_engine().connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        raise BackupError("the database has no schema (run init-db first)")
    database = dest / DATABASE[backend]
    if backend == "sqlite":
        _sqlite_copy(Path(url.database or ""), database)
    else:
        _pg_run("pg_dump", url, "--format=custom", f"--file={database}")
    sums = {database.name: _sha256(database)}
    files_dir = Path(current_app.config["FILES_DIR"])
    if files_dir.is_dir():
        (dest / FILES).mkdir()
        for source in sorted(files_dir.iterdir()):
            # Only stored files: staged uploads' sidecars, files being written and locks stay behind.
            if source.is_file() and storage.is_stored_name(source.name):
                sums[f"{FILES}/{source.name}"] = _copy(source, dest / FILES / source.name)
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "app_version": app_version(),
        "backend": backend,
        "revision": revision,
        "database": database.name,
        "sha256": sums,
    }
    # Written last: a backup that stopped half-way has no manifest, and restore refuses it.
    _write_durably(dest / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def restore_backup(src: Path) -> dict[str, Any]:
    """Restore the backup in ``src`` into the current application's empty database and files folder.

    Checks the manifest (every sha256) first, then copies the database and the files, upgrades the
    schema if the backup is of an older revision and rebuilds the search indexes. Returns the manifest.
    Raises BackupError, before anything is written, when the backup is incomplete or altered, of
    another backend or of a schema this code does not know, or the database or the files folder is
    not empty; and when ``pg_restore`` fails (in one transaction: the database stays empty).
    """
    manifest = read_manifest(src)
    url = make_url(current_app.config["DATABASE_URL"])
    backend = _backend(url)
    if manifest["backend"] != backend:
        raise BackupError(f"the backup is of a {manifest['backend']} database, this registry uses {backend}")
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    if manifest["revision"] not in {script.revision for script in scripts.walk_revisions()}:
        raise BackupError(f"the backup's schema revision {manifest['revision']} is unknown to this code")
    files_dir = Path(current_app.config["FILES_DIR"])
    if files_dir.exists() and any(path.is_file() for path in files_dir.rglob("*")):
        raise BackupError(f"the files folder {files_dir} is not empty")
    _require_empty_database()
    get_engine().dispose()
    database = src / manifest["database"]
    if backend == "sqlite":
        _sqlite_copy(database, Path(url.database or ""))
    else:
        _pg_drop_empty_tables()
        _pg_run(
            "pg_restore",
            url,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(database),
        )
    files_dir.mkdir(parents=True, exist_ok=True)
    for name in manifest["sha256"]:
        if name.startswith(f"{FILES}/"):
            _copy(src / name, files_dir / name.removeprefix(f"{FILES}/"))
    get_engine().dispose()
    migrate.upgrade()
    search.indexes().rebuild(session)
    return manifest


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src``, once every file it lists has its recorded sha256.

    Raises BackupError naming the first file that is missing or differs, or what is wrong with the
    manifest itself.
    """
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{src} holds no {MANIFEST}: not a backup, or one that did not finish") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{src / MANIFEST} is not valid JSON: {exc}") from None
    keys = ("format", "backend", "revision", "database", "sha256")
    if not isinstance(manifest, dict) or any(key not in manifest for key in keys):
        raise BackupError(f"{src / MANIFEST} lacks one of {', '.join(keys)}")
    if manifest["format"] != FORMAT or manifest["backend"] not in DATABASE:
        raise BackupError(f"{src / MANIFEST}: unknown format or backend")
    sums = manifest["sha256"]
    if not isinstance(sums, dict) or manifest["database"] != DATABASE[manifest["backend"]]:
        raise BackupError(f"{src / MANIFEST}: the database is not listed as expected")
    for name, expected in sums.items():
        # Only names a backup writes: nothing in a manifest may point outside the backup's folder.
        stored = name.removeprefix(f"{FILES}/")
        if name != manifest["database"] and not (name != stored and storage.is_stored_name(stored)):
            raise BackupError(f"{src / MANIFEST}: unexpected file name {name!r}")
        path = src / name
        if not path.is_file():
            raise BackupError(f"{name} is missing from the backup")
        if _sha256(path) != expected:
            raise BackupError(f"{name} does not match its sha256 in the manifest: the backup is damaged")
    if manifest["database"] not in sums:
        raise BackupError(f"{src / MANIFEST}: the database is not listed")
    return manifest


def app_version() -> str:
    """The registry's version, as ``pyproject.toml`` states it."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _backend(url: URL) -> str:
    if url.get_backend_name() not in DATABASE:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {url.get_backend_name()}")
    return url.get_backend_name()


def _require_empty_database() -> None:
    """Raise BackupError if any table of the database (the schema's own rows aside) holds a row."""
    with get_engine().connect() as connection:
        for table in inspect(connection).get_table_names():
            # Rows the migrations themselves write: the revision, and the content generation's one row.
            if table in ("alembic_version", "content_generation"):
                continue
            quoted = connection.dialect.identifier_preparer.quote(table)
            if connection.execute(text(f"SELECT 1 FROM {quoted} LIMIT 1")).first() is not None:
                raise BackupError(f"the database is not empty (table {table} has rows)")


def _pg_drop_empty_tables() -> None:
    """Drop the (empty, checked) tables of a database made by ``init-db``, so the dump's schema and
    revision replace them: the restored schema must be the backup's, for the migrations to follow it."""
    metadata = MetaData()
    with get_engine().begin() as connection:
        metadata.reflect(connection)
        metadata.drop_all(connection)
        # The functions the dropped triggers called (the audit trail's append-only rule): the dump
        # creates them again.
        quote = connection.dialect.identifier_preparer.quote
        for name in connection.scalars(text(_TRIGGER_FUNCTIONS)).all():
            connection.execute(text(f"DROP FUNCTION {quote(name)}()"))


def _pg_run(program: str, url: URL, *args: str) -> None:
    """Run ``pg_dump`` or ``pg_restore`` on ``url``'s database; the password goes by the environment."""
    binary = PG_BIN / program
    command = str(binary) if binary.exists() else shutil.which(program)
    if command is None:
        raise BackupError(f"{program} not found (install the PostgreSQL client, version 15)")
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    done = subprocess.run(
        [command, f"--dbname={conninfo}", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise BackupError(f"{program} failed: {last}")


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy an SQLite database page by page under its read lock (a consistent snapshot, WAL included)."""
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    with closing(sqlite3.connect(source)) as reader, closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` (private, fsynced, under a temporary name first); return its sha256."""
    digest = hashlib.sha256()
    temporary = target.with_name(f".partial-{target.name}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "wb") as out, source.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, target)
    return digest.hexdigest()


def _write_durably(path: Path, content: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(out.name, path)


@click.command("backup")
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@with_appcontext
def backup_command(dest: Path) -> None:
    """Back up the database, the stored files and a manifest of their sha256 into DEST (new or empty)."""
    try:
        manifest = make_backup(dest)
    except BackupError as exc:
        raise click.ClickException(f"Backup failed: {exc}.") from None
    click.echo(
        f"Backed up the {manifest['backend']} database (revision {manifest['revision']}) and "
        f"{len(manifest['sha256']) - 1} file(s) to {dest}."
    )


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@with_appcontext
def restore_command(src: Path) -> None:
    """Restore the backup in SRC into an empty database and files folder, then rebuild the search indexes."""
    try:
        manifest = restore_backup(src)
    except BackupError as exc:
        raise click.ClickException(f"Restore failed: {exc}.") from None
    click.echo(
        f"Restored the backup of {manifest.get('created_at', '?')} (revision {manifest['revision']}, "
        f"{len(manifest['sha256']) - 1} file(s)); search indexes rebuilt."
    )
