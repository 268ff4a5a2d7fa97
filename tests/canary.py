"""Canary data: unique markers in every confidential, registered-only and unpublished place."""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import select

from registry import clock, search
from registry.db import commit, session
from registry.models import AccessRequest, Record
from registry.policy import SYSTEM
from registry.services.records import review, shape, tiers, write

from .factories import import_payload, record_data

CONF = "CANARYCONF"  # only confidential-tier viewers and the own Party may see it
REG = "CANARYREG"  # registered users may see it, anonymous visitors may not
DRAFT = "CANARYDRAFT"  # nobody but the own Party and the Secretariat
GONE = "CANARYGONE"  # an old title: nobody but the own Party and the Secretariat, in the history
CAPACITY = "987654"
LATITUDE = "-1.2346"


def canary_records() -> list[dict]:
    """Records of Party ZA carrying the markers, in the import shape."""
    centre = record_data(
        type="rescue_centre",
        ref="canary-centre",
        title="Public rescue centre with hidden parts",
        details={
            "facility_type": "rescue_centre",
            "operator": "Open operator",
            "city": "Open city",
            "address": f"12 {CONF} Road",
            "latitude": -1.234567,
            "longitude": 36.8,
            "capacity": int(CAPACITY),
            "contacts": [
                {"name": f"{CONF} Person", "email": f"{CONF.lower()}@example.org", "phone": "+00 1"}
            ],
        },
        files=[
            {"path": "files/open-leaflet.pdf", "language": "en", "tier": "public", "text": "Open leaflet."},
            {
                "path": f"files/{CONF}-contacts.pdf",
                "language": "en",
                "tier": "confidential",
                "title": f"{CONF} contact list",
                "text": f"Contact list {CONF}.",
            },
            {
                "path": f"files/{REG}-annex.docx",
                "language": "en",
                "tier": "registered",
                "title": f"{REG} annex",
                "text": f"Annex {REG}.",
            },
        ],
    )
    return [
        centre,
        record_data(
            type="rescue_centre",
            title="Centre with a registered address",
            confidentiality={"level": "public", "fields": {"address": "registered"}},
            details={
                "facility_type": "sanctuary",
                "operator": "Op",
                "city": "Town",
                "address": f"{REG} Street",
            },
        ),
        record_data(
            type="rescue_centre",
            ref="hidden-centre",
            title=f"{CONF} confidential centre",
            confidentiality={
                "level": "confidential",
                "rule": f"{CONF} rule",
                "justification": "facility_security",
            },
            details={"facility_type": "zoo", "operator": f"{CONF} operator", "city": f"{CONF} city"},
        ),
        # Members of another Party's public network, public when indexed, changed afterwards
        # (``load_canaries``): raised to confidential, withdrawn, retitled.
        *(
            record_data(
                type="rescue_centre",
                ref=f"member-{change}",
                title=f"{marker} member centre, {change} after indexing",
                details={"facility_type": "sanctuary", "operator": "Member trust", "city": "Member town"},
            )
            for marker, change in ((CONF, "raised"), (DRAFT, "withdrawn"), (GONE, "retitled"))
        ),
        record_data(
            type="network",
            party="FR",
            title="French network with members of another Party",
            details={
                "coordinator": "Paris",
                "members": ["member-raised", "member-withdrawn", "member-retitled"],
            },
        ),
        record_data(
            type="network",
            title="Public network with a confidential member",
            party=None,
            scope="regional",
            region="africa",
            details={"coordinator": "Network office", "members": ["canary-centre", "hidden-centre"]},
        ),
        record_data(
            type="agreement",
            title=f"Agreement {CONF}",
            confidentiality={},  # contracts are confidential by default
            summary=f"Placement contract {CONF}.",
            details={
                "agreement_type": "placement",
                "ownership": "state",
                "financial_terms": f"USD {CONF}",
                "signatories": [f"{CONF} signatory"],
            },
            files=[
                {
                    "path": f"files/{CONF}-contract.docx",
                    "language": "fr",
                    "tier": "confidential",
                    "text": f"Contrat {CONF}.",
                }
            ],
        ),
        record_data(
            type="agreement",
            title="Public agreement with confidential terms",
            confidentiality={"level": "public"},
            details={"agreement_type": "memorandum", "ownership": "shared", "financial_terms": f"EUR {CONF}"},
        ),
        record_data(
            type="sop",
            title=f"SOP {REG}",
            summary=f"Registered only {REG}.",
            confidentiality={"level": "registered"},
            details={"agency": f"{REG} agency"},
            files=[{"path": f"files/{REG}-sop.pdf", "language": "es", "tier": "registered", "text": REG}],
        ),
        record_data(title=f"{DRAFT} draft protocol", status="draft"),
        record_data(title=f"{DRAFT} submitted protocol", status="submitted"),
        record_data(title=f"{DRAFT} returned protocol", status="returned"),
        record_data(title=f"{DRAFT} withdrawn protocol", status="withdrawn"),
        record_data(
            title="Once confidential, now public",
            translations=[{"language": "fr", "title": f"{CONF} traduction", "summary": f"{CONF} résumé"}],
        ),
        record_data(
            title="Language leak probe",
            files=[
                {"path": f"files/{CONF}-probe.pdf", "language": "es", "tier": "confidential", "text": CONF}
            ],
        ),
    ]


def load_canaries() -> dict[str, str]:
    """Import the canary records (inside an app context); return a few of their ids by name.

    Once indexed, the member centres change as the Secretariat would change them.
    """
    import_payload(canary_records())
    once = session.scalar(select(Record).where(Record.title == "Once confidential, now public"))
    # It was confidential before: its translation keeps the strictest tier the record ever had.
    once.peak_tier = "confidential"
    search.enqueue(once.id)
    commit()
    members = {
        r.title.split()[0]: r
        for r in session.scalars(select(Record).where(Record.title.like("% member centre, %")))
    }
    tiers.change_tier(SYSTEM, members[CONF], "confidential", "The keeper asked for it.")
    commit()
    review.withdraw(SYSTEM, members[DRAFT], "Closed.")
    commit()
    retitled = members[GONE]
    shaped = shape.record_shape(retitled)
    shaped.pop("files")
    write.save_record(
        SYSTEM,
        retitled,
        {**shaped, "title": "Renamed member centre"},
        [],
        Path(current_app.config["FILES_DIR"]),
    )
    commit()
    probe = session.scalar(select(Record.id).where(Record.title == "Language leak probe"))
    # An access request waiting for the Secretariat: its personal data are for the Secretariat only.
    now = clock.utcnow()
    session.add(
        AccessRequest(
            status="pending",
            email="canary.requester@test.example",
            country_iso="ZA",
            family_name=f"{DRAFT}family",
            given_name=f"{DRAFT}given",
            organisation=f"{DRAFT}organisation",
            function=f"{DRAFT}function",
            phone="+27 12 000 0000",
            organisation_type="customs",
            role_requested="enforcement",
            justification=f"{DRAFT}justification",
            consent_at=now,
            created_at=now,
            verified_at=now,
            decision_reason="",
        )
    )
    commit()
    return {"probe": probe}


MARKERS_HIDDEN_FROM = {
    "anonymous": (CONF, REG, DRAFT, GONE, CAPACITY, LATITUDE),
    "reader": (CONF, DRAFT, GONE, CAPACITY, LATITUDE),
    "party_other": (CONF, DRAFT, GONE, CAPACITY, LATITUDE),
}
# The markers that are words, which a search can ask for.
WORDS_HIDDEN_FROM = {
    role: tuple(m for m in markers if m.isalpha()) for role, markers in MARKERS_HIDDEN_FROM.items()
}
