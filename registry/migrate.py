"""Schema migrations (Alembic), run against the application's database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic configuration pointing at the registry's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    """Bring the database schema up to ``revision`` (inside an app context)."""
    command.upgrade(alembic_config(), revision)


def revision(message: str) -> None:
    """Write a new migration by comparing the models with the database (maintainers only)."""
    command.revision(alembic_config(), message=message, autogenerate=True)
