"""Controlled vocabularies shared by models, schemas, policy and pages.

Values are stored in the database and the JSON shape; their translated labels live in
``registry/labels.py``.
"""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    """Who may see a part of a record, from the most open."""

    PUBLIC = "public"
    REGISTERED = "registered"
    CONFIDENTIAL = "confidential"


class Role(StrEnum):
    READER = "reader"
    ENFORCEMENT = "enforcement"
    PARTY = "party"
    SECRETARIAT = "secretariat"


class Status(StrEnum):
    """Where a record stands: draft → submitted → published, returned or withdrawn."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Scope(StrEnum):
    NATIONAL = "national"
    REGIONAL = "regional"
    GLOBAL = "global"


# The vocabularies as tuples of their plain values, in order, for ``in`` tests, choices and loops
# (a library such as click reads enum members by their names). A member equals its value.
TIERS = tuple(t.value for t in Tier)
ROLES = tuple(r.value for r in Role)
STATUSES = tuple(s.value for s in Status)
LANGUAGES = ("en", "fr", "es")
SCOPES = tuple(s.value for s in Scope)
REGIONS = (
    "africa",
    "asia",
    "central_south_america_caribbean",
    "europe",
    "north_america",
    "oceania",
)
RECORD_TYPES = (
    "action_plan",
    "protocol",
    "regulatory_measure",
    "sop",
    "species_guidance",
    "general_guidance",
    "network",
    "rescue_centre",
    "agreement",
)
RANKS = ("species", "genus", "family", "order")
APPENDICES = ("I", "II", "III")

# Stages of handling a live seizure, from seizure to final disposal.
STAGES = (
    "seizure",
    "identification",
    "temporary_holding",
    "veterinary_care",
    "quarantine",
    "transport",
    "final_disposal",
)
# Disposal options of Resolution Conf. 17.8.
DISPOSAL_OPTIONS = ("captivity", "return_to_wild", "repatriation", "euthanasia")
INSTRUMENT_TYPES = ("law", "regulation", "decree", "order", "circular")
GUIDANCE_AREAS = (
    "handling",
    "housing",
    "diet",
    "veterinary",
    "transport",
    "identification",
    "release",
    "welfare",
)
GUIDANCE_KINDS = ("guidelines", "training", "manual", "resolution")
AUDIENCES = ("enforcement", "management_authority", "rescue_centre", "veterinarian", "judiciary")
FACILITY_TYPES = (
    "rescue_centre",
    "sanctuary",
    "zoo",
    "quarantine_station",
    "rehabilitation_centre",
    "temporary_holding",
)
SERVICES = (
    "quarantine",
    "veterinary",
    "rehabilitation",
    "release",
    "long_term_care",
    "identification",
    "temporary_holding",
    "transport",
)
AGREEMENT_TYPES = ("placement", "transfer", "loan", "memorandum", "service_contract", "repatriation")
OWNERSHIP = ("state", "recipient", "shared", "origin_state")

# Files the registry accepts, by the media type found by parsing them.
MEDIA_TYPES = {
    "application/pdf": ".pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}

# Why a Party keeps something confidential (the short list of the submission form).
JUSTIFICATIONS = (
    "law_enforcement",
    "personal_data",
    "facility_security",
    "commercial_terms",
    "not_adopted",
    "other",
)

# Access requests (the CENcomm form): who asks, for which role, and where the request stands.
ORGANISATION_TYPES = (
    "customs",
    "police",
    "other_enforcement",
    "management_authority",
    "scientific_authority",
    "igo",
    "ngo",
    "research",
)
# The Secretariat is never a role anyone asks for: its accounts are made on the command line.
REQUESTABLE_ROLES = ("reader", "enforcement", "party")
ACCESS_REQUEST_STATUSES = ("unverified", "pending", "accepted", "declined")

# What the audit trail records (``services.audit.log``); labelled in ``labels``.
AUDIT_ACTIONS = (
    "login",
    "login_failed",
    "login_throttled",
    "create",
    "edit",
    "submit",
    "return",
    "publish",
    "withdraw",
    "tier_change",
    "download",
    "call_created",
    "reminder_sent",
    "refused",
    "access_request_accepted",
    "access_request_declined",
    "password_set",
    "totp_enabled",
    "totp_disabled",
    "signed_out_everywhere",
    "user_deactivated",
    "user_reactivated",
    "user_expiry",
)
