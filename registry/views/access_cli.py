"""``flask --app registry access-requests anonymise``: the retention of access requests.

A command is a transaction boundary like a request: the service flushes, the command commits.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from .. import policy
from ..db import commit
from ..services import access_requests

group = AppGroup("access-requests", help="Access requests: retention of their personal data.")


@group.command("anonymise")
@with_appcontext
def anonymise_command() -> None:
    """Anonymise access requests older than ACCESS_REQUEST_RETENTION_DAYS and delete unconfirmed ones
    whose link has expired. Run it daily."""
    done = access_requests.purge(policy.SYSTEM, current_app.config["ACCESS_REQUEST_RETENTION_DAYS"])
    commit()
    click.echo(f"Anonymised {done.anonymised} access request(s); deleted {done.deleted} unconfirmed.")
