"""Commands: ``flask --app registry init-db | seed | users create | import | export``.

A command is a transaction boundary like a request: services flush, the command commits.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from . import backup, mail, migrate, policy, search, uploads
from .db import commit, rollback, session
from .errors import Forbidden, Invalid
from .models import Record, User
from .services import accounts, calls, exports, imports
from .views import access_cli
from .vocab import ROLES, TIERS

users = AppGroup("users", help="Manage user accounts.")

# The demo accounts `seed` creates: one per role, and two Parties so each sees only its own material.
DEMO_USERS = (
    ("secretariat@demo.example", "secretariat", None, "Ana", "Secretariat"),
    ("enforcement@demo.example", "enforcement", None, "Emeka", "Enforcement"),
    ("reader@demo.example", "reader", None, "Rosa", "Reader"),
    ("party-fr@demo.example", "party", "FR", "Fabienne", "Focal Point"),
    ("party-za@demo.example", "party", "ZA", "Zanele", "Focal Point"),
)


def _fail(problems: dict | list) -> None:
    rollback()
    lines = (
        problems
        if isinstance(problems, list)
        else [f"{k}: {'; '.join(map(str, v))}" for k, v in problems.items()]
    )
    raise click.ClickException("\n".join(str(line) for line in lines))


@click.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create or upgrade the database schema."""
    migrate.upgrade()
    click.echo(f"Database ready: {current_app.config['DATABASE_URL'].split('@')[-1]}")


@click.command("seed")
@with_appcontext
@click.option(
    "--reference-only", is_flag=True, help="Load only the Parties and the taxa: no demo records or accounts."
)
def seed_command(reference_only: bool) -> None:
    """Load the Parties, the taxon checklist and, into an empty registry, the demo records and accounts.

    Demo accounts get new random passwords at every run; they are printed once.
    """
    import seed

    parties, taxa = imports.load_reference(seed.read_json("parties.json"), seed.read_json("taxa.json"))
    click.echo(f"Reference data: {parties} Parties, {taxa} taxa.")
    # Committed before the demo files are read: no write transaction is held while text is extracted.
    commit()
    if reference_only:
        return
    if session.scalar(select(func.count()).select_from(Record)):
        click.echo("Records already present: demo records not loaded again.")
    else:
        payload, folder = seed.demo_payload()
        with folder:
            try:
                report = imports.import_records(
                    policy.SYSTEM,
                    payload,
                    Path(folder.name),
                    Path(current_app.config["FILES_DIR"]),
                    current_app.config["MAX_CONTENT_LENGTH"],
                )
            except Invalid as exc:
                _fail(exc.messages.get("problems", exc.messages))
        click.echo(f"Demo records: {len(report.created)} loaded.")
        for call in seed.read_json("demo.json").get("calls", []):
            try:
                calls.create_call(policy.SYSTEM, call)
            except Invalid as exc:
                _fail(exc.messages)
    accounts_made = _demo_accounts()
    commit()
    if accounts_made:
        click.echo("\nDemo accounts (new passwords at every run; sign in at /login):")
        width = max(len(email) for email, *_ in accounts_made)
        for email, role, party, password in accounts_made:
            click.echo(f"  {email:<{width}}  {password}  {role}{f' ({party})' if party else ''}")


def _demo_accounts() -> list[tuple[str, str, str | None, str]]:
    made = []
    for email, role, party, given, family in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            accounts.create_user(
                policy.SYSTEM,
                email,
                role,
                password,
                party,
                given_name=given,
                family_name=family,
                organisation="Demo",
            )
        else:
            accounts.set_password(user, password)
        made.append((email, role, party, password))
    return made


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--party", "party_iso", help="ISO code of the Party (required for party users).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--given-name", default="")
@click.option("--family-name", default="")
@click.option("--organisation", default="")
def users_create(
    email: str,
    role: str,
    party_iso: str | None,
    password_stdin: bool,
    given_name: str,
    family_name: str,
    organisation: str,
) -> None:
    """Create a user account; without --password-stdin a random password is generated and printed."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = secrets.token_urlsafe(12)
    try:
        accounts.create_user(
            policy.SYSTEM,
            email,
            role,
            password,
            party_iso,
            given_name=given_name,
            family_name=family_name,
            organisation=organisation,
        )
    except Invalid as exc:
        _fail(exc.messages)
    commit()
    click.echo(
        f"Created {role} {email.strip().lower()}" + ("" if password_stdin else f" with password {password}")
    )


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(path: Path) -> None:
    """Import records from a JSON file (files named relative to it). All or nothing."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path}: not valid UTF-8 JSON: {exc}") from exc
    try:
        report = imports.import_records(
            policy.SYSTEM,
            payload,
            path.resolve().parent,
            Path(current_app.config["FILES_DIR"]),
            current_app.config["MAX_CONTENT_LENGTH"],
        )
    except Invalid as exc:
        problems = exc.messages.get("problems", [])
        _fail([f"Nothing was imported: {len(problems)} problem(s).", *problems])
    commit()
    click.echo(f"Imported {len(report.created)} record(s).")


@click.command("export")
@with_appcontext
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tier", type=click.Choice(TIERS), default="public", show_default=True)
def export_command(path: Path, tier: str) -> None:
    """Export the published records visible at --tier, with their files, in the import shape."""
    try:
        count = exports.export_records(policy.SYSTEM, tier, path, Path(current_app.config["FILES_DIR"]))
    except Forbidden as exc:
        raise click.ClickException("Export not allowed.") from exc
    click.echo(f"Exported {count} record(s) at tier {tier} to {path}.")


@click.command("reindex")
@with_appcontext
def reindex_command() -> None:
    """Build every tier's search index from the database beside the old one, then swap it in."""
    counts = search.indexes().rebuild(session)
    click.echo("Indexed: " + ", ".join(f"{tier} {n}" for tier, n in counts.items()) + ".")


@click.command("index-status")
@with_appcontext
def index_status_command() -> None:
    """List records missing from an index, entries without a record and stale entries; exit 1 if any."""
    search.indexes().catch_up(session)
    report = search.indexes().status(session)
    problems = 0
    for tier, found in report.items():
        for kind, ids in found.items():
            problems += len(ids)
            if ids:
                click.echo(f"{tier}: {len(ids)} {kind}: {' '.join(ids[:20])}{' …' if len(ids) > 20 else ''}")
    if problems:
        raise SystemExit(1)
    click.echo("All indexes match the database.")


@click.command("mail-resend")
@with_appcontext
def mail_resend_command() -> None:
    """Try now to deliver every e-mail not delivered yet (given-up ones too); those that fail stay queued."""
    sent = mail.resend_failed()
    click.echo(f"Resent {sent} e-mail(s).")


@click.command("sweep-files")
@with_appcontext
@click.option(
    "--older-than-hours",
    type=click.FloatRange(min=uploads.TOKEN_MAX_AGE / 3600),
    default=uploads.TOKEN_MAX_AGE / 3600,
    show_default=True,
    help="Keep files touched more recently than this (never less than an upload's token lives).",
)
def sweep_files_command(older_than_hours: float) -> None:
    """Delete uploaded files that no record references: the uploads of abandoned forms (run it hourly)."""
    removed = uploads.sweep(
        session, Path(current_app.config["FILES_DIR"]), dt.timedelta(hours=older_than_hours)
    )
    click.echo(f"Removed {len(removed)} unreferenced file(s).")


def init_app(app: Flask) -> None:
    """Register the commands."""
    for command in (
        init_db,
        seed_command,
        import_command,
        export_command,
        reindex_command,
        index_status_command,
        mail_resend_command,
        sweep_files_command,
        backup.backup_command,
        backup.restore_command,
    ):
        app.cli.add_command(command)
    app.cli.add_command(users)
    app.cli.add_command(access_cli.group)
