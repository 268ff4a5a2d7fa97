"""Test factories: ``make_x(**overrides)`` callables that go through the real services."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from flask import current_app

import seed
from registry import policy
from registry.db import commit, session
from registry.models import Record, User
from registry.services import accounts, imports

PASSWORD = "correct horse battery staple"
# The second factor every test Secretariat account has (the Secretariat must have one): ``login``
# in conftest and ``sign_in`` in tests/browser.py answer its code step with it.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

_DEFAULT_DETAILS = {
    "action_plan": {"lead_agency": "Wildlife Authority"},
    "protocol": {"responsible_agency": "Customs"},
    "regulatory_measure": {"instrument_type": "law", "reference": "Act 1"},
    "sop": {"agency": "Police"},
    "species_guidance": {"author": "Vet Team"},
    "general_guidance": {"kind": "guidelines", "publisher": "IUCN"},
    "network": {"coordinator": "Network office"},
    "rescue_centre": {"facility_type": "rescue_centre", "operator": "Operator", "city": "Town"},
    "agreement": {"agreement_type": "placement", "ownership": "state"},
}


def record_data(**overrides: Any) -> dict[str, Any]:
    """A valid record in the JSON shape; ``overrides`` replace top-level keys."""
    record_type = overrides.get("type", "protocol")
    data: dict[str, Any] = {
        "type": record_type,
        "title": "A protocol for seized parrots",
        "summary": "How to hold seized parrots.",
        "language": "en",
        "party": "ZA",
        "scope": "national",
        "year": 2022,
        "status": "published",
        "taxa": ["Psittacus erithacus"],
        "confidentiality": {"level": "public"},
        "details": dict(_DEFAULT_DETAILS.get(record_type, {})),
        "files": [],
    }
    data.update(overrides)
    return data


def import_payload(records: list[dict[str, Any]]) -> list[str]:
    """Import ``records`` (file entries may carry ``text``) as the Secretariat; commit; return the new ids."""
    with tempfile.TemporaryDirectory() as folder:
        payload = seed.materialise_demo(Path(folder), {"records": records})
        report = imports.import_records(
            policy.SYSTEM, payload, Path(folder), Path(current_app.config["FILES_DIR"]), 10 * 1024 * 1024
        )
    commit()
    return report.created


def make_record(**overrides: Any) -> Record:
    """Create one record through the import service (inside an app context) and return it."""
    (record_id,) = import_payload([record_data(**overrides)])
    return session.get(Record, record_id)


def make_user(role: str, party: str | None = None, email: str | None = None, **profile: str) -> User:
    """Create an active user with the password ``PASSWORD`` (a Secretariat user with ``TOTP_SECRET``)."""
    email = email or f"{role}-{party or 'x'}@test.example".lower()
    user = accounts.create_user(policy.SYSTEM, email, role, PASSWORD, party, **profile)
    if role == "secretariat":
        user.totp_secret = TOTP_SECRET
    commit()
    return user
