"""Alembic environment: migrations run on the application's own engine."""

from __future__ import annotations

from alembic import context
from flask import current_app

from registry import models  # noqa: F401 - registers every table on the metadata
from registry.db import Base, get_engine

config = context.config


def run_migrations() -> None:
    """Run the migrations online, on a connection of the app's engine."""
    with get_engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit(f"Offline migrations are not supported ({current_app.name}).")
run_migrations()
