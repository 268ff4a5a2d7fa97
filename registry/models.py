"""The registry's tables, as SQLAlchemy 2 typed models.

A ``Record`` holds the common core of every resource; each of the nine resource types adds
its own details in a joined table. Tiers are stored as their names (see ``registry.vocab``);
only ``registry.policy`` interprets them.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, ClassVar

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    false,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .db import Base

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str) -> str:
    """Return an opaque random identifier such as ``r7k2m9q4x1c8d`` (not guessable, not sequential)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def looks_like_id(value: object, prefix: str) -> bool:
    """Whether ``value`` has the shape of an id made by ``new_id(prefix)`` (checked before any query)."""
    return (
        isinstance(value, str)
        and len(value) == 13
        and value.startswith(prefix)
        and all(c in _ALPHABET for c in value[1:])
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Party(Base):
    """A Party to CITES: a State, or the European Union."""

    __tablename__ = "parties"

    iso: Mapped[str] = mapped_column(String(2), primary_key=True)
    region: Mapped[str] = mapped_column(String(40), index=True)
    name_en: Mapped[str] = mapped_column(String(200))
    name_fr: Mapped[str] = mapped_column(String(200))
    name_es: Mapped[str] = mapped_column(String(200))

    def name(self, language: str) -> str:
        """The official name in ``language`` (en, fr or es), English otherwise."""
        return getattr(self, f"name_{language}", None) or self.name_en


class Taxon(Base):
    """A taxon of the checklist of animals commonly seized alive."""

    __tablename__ = "taxa"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    rank: Mapped[str] = mapped_column(String(20))
    genus: Mapped[str | None] = mapped_column(String(100), index=True)
    family: Mapped[str | None] = mapped_column(String(100), index=True)
    order_name: Mapped[str | None] = mapped_column(String(100))
    class_name: Mapped[str | None] = mapped_column(String(100))
    appendix: Mapped[str | None] = mapped_column(String(3))
    common_en: Mapped[str | None] = mapped_column(String(200))
    common_fr: Mapped[str | None] = mapped_column(String(200))
    common_es: Mapped[str | None] = mapped_column(String(200))

    def common(self, language: str) -> str | None:
        """The common name in ``language``, English otherwise."""
        return getattr(self, f"common_{language}", None) or self.common_en


class User(UserMixin, Base):
    """A person who signs in: reader, enforcement officer, Party focal point or Secretariat."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    given_name: Mapped[str] = mapped_column(String(100), default="")
    family_name: Mapped[str] = mapped_column(String(100), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    function: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    # The language of the e-mails the user receives (en, fr or es).
    language: Mapped[str] = mapped_column(String(2), default="en", server_default="en")
    role: Mapped[str] = mapped_column(String(20))
    party_iso: Mapped[str | None] = mapped_column(ForeignKey("parties.iso"))
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    # Rotated at logout: the login cookie carries it, so a copied cookie stops working.
    session_nonce: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_urlsafe(24))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    # Naive UTC; from then on the account is treated as anonymous (None: no end).
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Base32 TOTP secret (RFC 6238) once the second factor is enabled, and the last time step
    # accepted, so that a code cannot be used twice.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(Integer)

    party: Mapped[Party | None] = relationship()

    def get_id(self) -> str:
        """The login cookie's identity: the user id bound to the current session nonce."""
        return f"{self.id}:{self.session_nonce}"

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        """Deactivated or expired users cannot sign in and their sessions stop working."""
        return self.active and not self.is_expired

    @property
    def is_expired(self) -> bool:
        """Whether the access the Secretariat granted has ended (``expires_at`` has passed)."""
        return self.expires_at is not None and self.expires_at <= clock.utcnow()

    @property
    def display_name(self) -> str:
        """The name to show, falling back to the e-mail address."""
        return f"{self.given_name} {self.family_name}".strip() or self.email


record_taxa = Table(
    "record_taxa",
    Base.metadata,
    Column("record_id", ForeignKey("records.id", ondelete="CASCADE"), primary_key=True),
    Column("taxon_id", ForeignKey("taxa.id"), primary_key=True, index=True),
)

network_members = Table(
    "network_members",
    Base.metadata,
    Column("network_id", ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
    Column("centre_id", ForeignKey("rescue_centres.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_network_members_centre_id", "centre_id"),
)

# Every way one record shows data of another, by the detail that holds the others: the columns of the
# association table that name the record that shows (``by``) and the record shown (``shown``). The
# policy filters each shown record for the viewer (``policy.related``), and a change of a shown record
# re-indexes every record that shows it (``search.outbox``). A new relation is added here, or neither
# happens for it.
SHOWN_RECORDS: dict[str, tuple[Column[Any], Column[Any]]] = {
    "members": (network_members.c.network_id, network_members.c.centre_id),
}


class Record(Base):
    """The common core of every resource, with its confidentiality block and workflow status."""

    __tablename__ = "records"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=lambda: new_id("r"))
    type: Mapped[str] = mapped_column(String(30), index=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(2), index=True)
    party_iso: Mapped[str | None] = mapped_column(ForeignKey("parties.iso"), index=True)
    scope: Mapped[str] = mapped_column(String(10), default="national")
    region: Mapped[str | None] = mapped_column(String(40), index=True)
    issuing_bodies: Mapped[list[str]] = mapped_column(JSON, default=list)
    year: Mapped[int | None] = mapped_column(Integer, index=True)
    date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)

    # The confidentiality block.
    tier: Mapped[str] = mapped_column(String(12), default="public", index=True)
    # The strictest tier the record ever had: translations and old versions inherit it.
    peak_tier: Mapped[str] = mapped_column(String(12), default="public")
    confidentiality_rule: Mapped[str] = mapped_column(Text, default="")
    confidentiality_justification: Mapped[str] = mapped_column(Text, default="")
    disclosure_date: Mapped[dt.date | None] = mapped_column(Date)
    # Tiers of the named sensitive fields, e.g. {"address": "confidential"}.
    field_tiers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # The tiers the Secretariat last set, which stand until it changes them itself: {"record": tier,
    # "fields": {group: tier}, "files": {file id: tier}} (``services.records.tiers``).
    tier_floors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")

    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, onupdate=_utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime, index=True)
    # The Secretariat's comment when it last returned the record (or its revision) to the Party.
    review_comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The Party's next version of a published record, in the JSON shape, while the published one stays
    # live: ``revision_status`` is draft, submitted or returned (None when there is no revision).
    revision: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    revision_status: Mapped[str | None] = mapped_column(String(12), index=True)

    party: Mapped[Party | None] = relationship(lazy="joined")
    translations: Mapped[list[RecordTranslation]] = relationship(
        back_populates="record",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="RecordTranslation.language",
    )
    # The record's live files and those its pending revision adds; files that only old versions
    # still list (``File.retired``) are left out.
    files: Mapped[list[File]] = relationship(
        back_populates="record",
        cascade="all, delete-orphan",
        lazy="selectin",
        primaryjoin="and_(Record.id == File.record_id, File.retired == false())",
        order_by="File.created_at",
    )
    taxa: Mapped[list[Taxon]] = relationship(secondary=record_taxa, lazy="selectin", order_by="Taxon.name")

    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "type"}

    # Names of the type-specific detail attributes, set on each subclass.
    DETAIL_FIELDS: ClassVar[tuple[str, ...]] = ()

    def details(self) -> dict[str, Any]:
        """The type-specific details as a plain dict (unfiltered: callers go through the policy)."""
        return {name: getattr(self, name) for name in self.DETAIL_FIELDS}


def _details_table(name: str) -> Mapped[str]:
    return mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)


class ActionPlan(Record):
    """A national action plan for seized and confiscated live animals."""

    __tablename__ = "action_plans"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "action_plan",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = (
        "lead_agency",
        "participating_agencies",
        "stages",
        "disposal_options",
        "period_start",
        "period_end",
    )

    id: Mapped[str] = _details_table("action_plans")
    lead_agency: Mapped[str] = mapped_column(Text, default="")
    participating_agencies: Mapped[list[str]] = mapped_column(JSON, default=list)
    stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    disposal_options: Mapped[list[str]] = mapped_column(JSON, default=list)
    period_start: Mapped[int | None] = mapped_column(Integer)
    period_end: Mapped[int | None] = mapped_column(Integer)


class Protocol(Record):
    """A protocol for handling live animals at a stage of the seizure chain."""

    __tablename__ = "protocols"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "protocol",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = ("responsible_agency", "stages", "procedures")

    id: Mapped[str] = _details_table("protocols")
    responsible_agency: Mapped[str] = mapped_column(Text, default="")
    stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    procedures: Mapped[str] = mapped_column(Text, default="")


class RegulatoryMeasure(Record):
    """A law, regulation or other measure governing seized live animals."""

    __tablename__ = "regulatory_measures"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "regulatory_measure",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = ("instrument_type", "reference", "authority", "in_force_from", "provisions")

    id: Mapped[str] = _details_table("regulatory_measures")
    instrument_type: Mapped[str] = mapped_column(String(20), default="law")
    reference: Mapped[str] = mapped_column(Text, default="")
    authority: Mapped[str] = mapped_column(Text, default="")
    in_force_from: Mapped[dt.date | None] = mapped_column(Date)
    provisions: Mapped[str] = mapped_column(Text, default="")


class Sop(Record):
    """A standard operating procedure of an agency."""

    __tablename__ = "sops"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "sop",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = ("agency", "stages", "version", "review_date")

    id: Mapped[str] = _details_table("sops")
    agency: Mapped[str] = mapped_column(Text, default="")
    stages: Mapped[list[str]] = mapped_column(JSON, default=list)
    version: Mapped[str] = mapped_column(String(50), default="")
    review_date: Mapped[dt.date | None] = mapped_column(Date)


class SpeciesGuidance(Record):
    """Guidance for the care of particular species or genera."""

    __tablename__ = "species_guidance"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "species_guidance",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = ("author", "guidance_areas")

    id: Mapped[str] = _details_table("species_guidance")
    author: Mapped[str] = mapped_column(Text, default="")
    guidance_areas: Mapped[list[str]] = mapped_column(JSON, default=list)


class GeneralGuidance(Record):
    """Global guidelines and training material."""

    __tablename__ = "general_guidance"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "general_guidance",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = ("kind", "publisher", "audience")

    id: Mapped[str] = _details_table("general_guidance")
    kind: Mapped[str] = mapped_column(String(20), default="guidelines")
    publisher: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[list[str]] = mapped_column(JSON, default=list)


class RescueCentre(Record):
    """A rescue centre, sanctuary or other facility that takes in confiscated animals."""

    __tablename__ = "rescue_centres"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "rescue_centre",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = (
        "facility_type",
        "operator",
        "city",
        "subnational_region",
        "address",
        "latitude",
        "longitude",
        "capacity",
        "contacts",
        "accreditations",
        "services",
    )

    id: Mapped[str] = _details_table("rescue_centres")
    facility_type: Mapped[str] = mapped_column(String(30), default="rescue_centre")
    operator: Mapped[str] = mapped_column(Text, default="")
    city: Mapped[str] = mapped_column(String(200), default="")
    subnational_region: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    capacity: Mapped[int | None] = mapped_column(Integer)
    contacts: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    accreditations: Mapped[list[str]] = mapped_column(JSON, default=list)
    services: Mapped[list[str]] = mapped_column(JSON, default=list)


class Network(Record):
    """A network of rescue centres."""

    __tablename__ = "networks"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "network",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = ("coordinator", "coverage", "coverage_regions", "website", "members")

    id: Mapped[str] = _details_table("networks")
    coordinator: Mapped[str] = mapped_column(Text, default="")
    coverage: Mapped[str] = mapped_column(Text, default="")
    coverage_regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    website: Mapped[str | None] = mapped_column(String(500))
    members: Mapped[list[RescueCentre]] = relationship(
        secondary=network_members,
        primaryjoin="Network.id == network_members.c.network_id",
        secondaryjoin="RescueCentre.id == network_members.c.centre_id",
        lazy="selectin",
    )


class Agreement(Record):
    """A contract or agreement about confiscated animals: confidential by default."""

    __tablename__ = "agreements"
    __mapper_args__: ClassVar[dict[str, Any]] = {
        "polymorphic_identity": "agreement",
        "polymorphic_load": "selectin",
    }
    DETAIL_FIELDS = (
        "agreement_type",
        "signatories",
        "start_date",
        "end_date",
        "ownership",
        "ownership_notes",
        "financial_terms",
    )

    id: Mapped[str] = _details_table("agreements")
    agreement_type: Mapped[str] = mapped_column(String(30), default="placement")
    signatories: Mapped[list[str]] = mapped_column(JSON, default=list)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    ownership: Mapped[str] = mapped_column(String(20), default="state")
    ownership_notes: Mapped[str] = mapped_column(Text, default="")
    financial_terms: Mapped[str] = mapped_column(Text, default="")


MODEL_FOR_TYPE: dict[str, type[Record]] = {
    mapper.polymorphic_identity: mapper.class_
    for mapper in Record.__mapper__.self_and_descendants
    if mapper.polymorphic_identity
}


class RecordTranslation(Base):
    """A translation of a record's title and summary into another language."""

    __tablename__ = "record_translations"

    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(String(2), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")

    record: Mapped[Record] = relationship(back_populates="translations")


class File(Base):
    """A language version of a record's document, stored outside any static folder under a random name."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=lambda: new_id("f"))
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    # en, fr, es, or "other" for a language version in none of the three (``schemas.FILE_LANGUAGES``).
    language: Mapped[str] = mapped_column(String(8))
    tier: Mapped[str] = mapped_column(String(12), default="public")
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(100))
    original_name: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, server_default=func.now())
    # Text extracted once at upload (in a sandboxed subprocess), so rebuilding the indexes never re-extracts.
    text: Mapped[str | None] = mapped_column(Text, deferred=True)
    # Why extraction failed, shown to the Secretariat; None when it succeeded or has not run.
    text_error: Mapped[str | None] = mapped_column(Text)
    # Added in a revision of a published record: seen by no one but the Party and the Secretariat
    # until the revision is published.
    pending: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Dropped from the live record but listed by a kept version: kept, with its bytes, as the history
    # that only the Party and the Secretariat read.
    retired: Mapped[bool] = mapped_column(default=False, server_default=false())

    record: Mapped[Record] = relationship(back_populates="files")


class IndexJob(Base):
    """The outbox: a change to what some tier sees of a record, written in the same transaction as the change.

    Every node applies jobs in id order to its own search indexes and remembers the last one applied.
    """

    __tablename__ = "index_jobs"
    # Ids must never be reused (SQLite would reuse the highest after a delete without AUTOINCREMENT).
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(16), index=True)
    # Text left a tier (a tier was raised): rewrite that tier's segments so no trace of it stays in the
    # index's word list, where suggestions and ranking could still feel it.
    purge: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)


class RecordVersion(Base):
    """A published state of a record, kept when it is published: the history the Party and Secretariat see.

    ``payload`` is the record in the JSON shape (every field, unprojected); ``peak_tier`` is the strictest
    tier the record had when the version was made. Old versions are shown only to the own Party and the
    Secretariat, and never more openly than the record's ``peak_tier``.
    """

    __tablename__ = "record_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    published_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    published_by: Mapped[str] = mapped_column(String(254), default="")


class AuditEvent(Base):
    """One line of the append-only audit trail: who did what, when, from where.

    Rows are only ever inserted: the session refuses to update or delete them (see ``registry.audit``)
    and the database itself refuses it with triggers (migration 0003).
    """

    __tablename__ = "audit_events"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow, index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    # The actor as it was at that moment: users may change e-mail or role later.
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(254), default="")
    actor_role: Mapped[str] = mapped_column(String(20), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    # What it was about. No foreign keys: the trail outlives what it describes.
    record_id: Mapped[str | None] = mapped_column(String(16), index=True)
    file_id: Mapped[str | None] = mapped_column(String(16))
    party_iso: Mapped[str | None] = mapped_column(String(2), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Call(Base):
    """A call for information: the Secretariat's campaign, such as Notification 2021/008."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification: Mapped[str] = mapped_column(String(40))
    title_en: Mapped[str] = mapped_column(Text)
    title_fr: Mapped[str] = mapped_column(Text)
    title_es: Mapped[str] = mapped_column(Text)
    opens_on: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)

    def title(self, language: str) -> str:
        """The title in ``language`` (en, fr or es), English otherwise."""
        return getattr(self, f"title_{language}", None) or self.title_en


class SignInThrottle(Base):
    """Failed sign-in attempts of one account, client address or trusted browser (``services.throttle``).

    In the database, not in a process, so that every worker and node counts the same attempts and
    a restart forgets none.
    """

    __tablename__ = "sign_in_throttle"

    # "account:<sha256 of the e-mail>", "address:<address or IPv6 /64>" or "device:<token>".
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    # When this run of failures began.
    window_start: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    # The next attempt is refused until then (None: at once).
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # The run is over and forgotten from then on.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class AccountToken(Base):
    """A one-time link sent by e-mail: a password reset, or the invitation of an accepted user.

    Only the sha256 of the token is stored, so a copy of the database opens no account.
    """

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # "reset" or "invite".
    purpose: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # Set once the link has been used (or replaced by a newer one): it never works again.
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()


class AccessRequest(Base):
    """A request for an account, made on the public form (the fields of CITES' CENcomm form).

    It reaches the Secretariat only once its e-mail address is confirmed by a link, of which only
    the sha256 is stored. After the retention period it is anonymised: the personal fields are
    blanked and the address replaced, while the status, country, organisation type and roles stay
    for statistics (``services.access_requests``).
    """

    __tablename__ = "access_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # unverified -> pending -> accepted | declined (``vocab.ACCESS_REQUEST_STATUSES``).
    status: Mapped[str] = mapped_column(String(20), default="unverified", index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    country_iso: Mapped[str] = mapped_column(ForeignKey("parties.iso"))
    family_name: Mapped[str] = mapped_column(String(100), default="")
    given_name: Mapped[str] = mapped_column(String(100), default="")
    organisation: Mapped[str] = mapped_column(String(200), default="")
    function: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    organisation_type: Mapped[str] = mapped_column(String(30))
    role_requested: Mapped[str] = mapped_column(String(20))
    justification: Mapped[str] = mapped_column(Text, default="")
    # When the requester consented to the processing of their personal data.
    consent_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # The requester's language, for the e-mails they receive (en, fr or es).
    language: Mapped[str] = mapped_column(String(2), default="en")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    # The confirmation link: the sha256 of its token until it is used, and when it stops working.
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Why it was declined (sent to the requester), or a note on the acceptance.
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    granted_role: Mapped[str | None] = mapped_column(String(20))
    granted_party_iso: Mapped[str | None] = mapped_column(ForeignKey("parties.iso"))
    # The access granted ends at the start of this day (UTC): the account's ``expires_at``.
    granted_until: Mapped[dt.date | None] = mapped_column(Date)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    anonymised_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    country: Mapped[Party] = relationship(foreign_keys=[country_iso])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def display_name(self) -> str:
        """The requester's name as they gave it."""
        return f"{self.given_name} {self.family_name}".strip()


class RateLimitCounter(Base):
    """Requests counted in one fixed window of one rate limit (``registry.ratelimit``).

    In the database so that every gunicorn worker and every node counts the same requests, and a
    restart forgets none. A row whose window is over is reused by its key's next request, or pruned.
    """

    __tablename__ = "rate_limit"

    # Flask-Limiter's key: the client (an address, an account, a browser), the limit's scope and the
    # limit itself; hashed when longer than the column.
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    # The window ends, and its count is forgotten, then.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class ContentGeneration(Base):
    """One row counting the transactions that changed what a page can show (``registry.generation``).

    Every worker reads it once per cached request: a page kept under an older count is never served.
    """

    __tablename__ = "content_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class QueuedMail(Base):
    """One e-mail in the delivery queue (``registry.mail``), written in the transaction that sent it.

    So a message goes out exactly when its change is durable, survives a restart, and waits here,
    retried with back-off, while the mail server is down. Its text may quote restricted material:
    a delivered message is pruned after ``mail.KEEP_SENT``.
    """

    __tablename__ = "mail_queue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(998))
    # The whole message as it goes out (headers and quoted-printable body).
    message: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=clock.utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it is next tried; None once delivered or given up.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    # A courier that took it owns it until then (so two never send it twice), or until it reports.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True, index=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
