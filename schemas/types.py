"""One schema per resource type: the common core plus the type's own details."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from registry.vocab import (
    AGREEMENT_TYPES,
    AUDIENCES,
    DISPOSAL_OPTIONS,
    FACILITY_TYPES,
    GUIDANCE_AREAS,
    GUIDANCE_KINDS,
    INSTRUMENT_TYPES,
    OWNERSHIP,
    REGIONS,
    SERVICES,
    STAGES,
)

from .common import REF, RecordSchema
from .fields import Between, Choice, Choices, Email, Line, Lines, Link, Text, Whole, distinct

MAX_CAPACITY = 1_000_000
MAX_MEMBERS = 500


class ActionPlanDetails(Schema):
    """A national action plan: who leads, which stages and Res. Conf. 17.8 options it covers."""

    lead_agency = Line(required=True)
    participating_agencies = Lines()
    stages = Choices(STAGES)
    disposal_options = Choices(DISPOSAL_OPTIONS)
    period_start = Whole(1950, 2100, load_default=None, allow_none=True)
    period_end = Whole(1950, 2100, load_default=None, allow_none=True)

    @validates_schema
    def _period(self, data: dict, **_kwargs: object) -> None:
        start, end = data.get("period_start"), data.get("period_end")
        if start and end and end < start:
            raise ValidationError([_l("The period cannot end before it starts.")], "period_end")


class ProtocolDetails(Schema):
    """A protocol for a stage of the chain from seizure to disposal."""

    responsible_agency = Line(required=True)
    stages = Choices(STAGES)
    procedures = Text(load_default="")


class RegulatoryMeasureDetails(Schema):
    """A law, regulation, decree, order or circular."""

    instrument_type = Choice(INSTRUMENT_TYPES, required=True)
    reference = Line(required=True)
    authority = Line(load_default="")
    in_force_from = fields.Date(load_default=None, allow_none=True)
    provisions = Text(load_default="")


class SopDetails(Schema):
    """A standard operating procedure."""

    agency = Line(required=True)
    stages = Choices(STAGES)
    version = Line(load_default="", max_length=50)
    review_date = fields.Date(load_default=None, allow_none=True)


class SpeciesGuidanceDetails(Schema):
    """Guidance for particular species or genera."""

    author = Line(required=True)
    guidance_areas = Choices(GUIDANCE_AREAS)


class GeneralGuidanceDetails(Schema):
    """Global guidelines, training material, manuals and resolutions."""

    kind = Choice(GUIDANCE_KINDS, required=True)
    publisher = Line(required=True)
    audience = Choices(AUDIENCES)


class ContactSchema(Schema):
    """A named contact at a rescue centre (a confidential field by default)."""

    name = Line(required=True, max_length=200)
    function = Line(load_default="", max_length=200)
    email = Email(load_default="")
    phone = Line(load_default="", max_length=50)


class RescueCentreDetails(Schema):
    """A facility that takes in confiscated animals."""

    facility_type = Choice(FACILITY_TYPES, required=True)
    operator = Line(required=True)
    city = Line(required=True, max_length=200)
    subnational_region = Line(load_default="", max_length=200)
    address = Text(load_default="", max_length=1000)
    latitude = Between(-90, 90, load_default=None, allow_none=True)
    longitude = Between(-180, 180, load_default=None, allow_none=True)
    # Animals at one time: the largest centres hold some tens of thousands (confiscated tortoises).
    capacity = Whole(0, MAX_CAPACITY, load_default=None, allow_none=True)
    contacts = fields.List(fields.Nested(ContactSchema), load_default=list, validate=validate.Length(max=50))
    accreditations = Lines()
    services = Choices(SERVICES)


class NetworkDetails(Schema):
    """A network of rescue centres; ``members`` names rescue-centre records by ref or id."""

    coordinator = Line(required=True)
    coverage = Text(load_default="", max_length=2000)
    coverage_regions = Choices(REGIONS)
    website = Link(load_default=None, allow_none=True, max_length=500)
    members = fields.List(
        fields.String(validate=REF),
        load_default=list,
        validate=[validate.Length(max=MAX_MEMBERS), distinct],
    )


class AgreementDetails(Schema):
    """A contract or agreement about confiscated animals."""

    agreement_type = Choice(AGREEMENT_TYPES, required=True)
    signatories = Lines()
    start_date = fields.Date(load_default=None, allow_none=True)
    end_date = fields.Date(load_default=None, allow_none=True)
    ownership = Choice(OWNERSHIP, required=True)
    ownership_notes = Text(load_default="")
    financial_terms = Text(load_default="")

    @validates_schema
    def _dates(self, data: dict, **_kwargs: object) -> None:
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            raise ValidationError([_l("The agreement cannot end before it starts.")], "end_date")


DETAILS_SCHEMAS: dict[str, type[Schema]] = {
    "action_plan": ActionPlanDetails,
    "protocol": ProtocolDetails,
    "regulatory_measure": RegulatoryMeasureDetails,
    "sop": SopDetails,
    "species_guidance": SpeciesGuidanceDetails,
    "general_guidance": GeneralGuidanceDetails,
    "rescue_centre": RescueCentreDetails,
    "network": NetworkDetails,
    "agreement": AgreementDetails,
}


def _record_schema(type_name: str, details: type[Schema]) -> type[RecordSchema]:
    name = "".join(part.title() for part in type_name.split("_")) + "Schema"
    return type(
        name,
        (RecordSchema,),
        {
            "details": fields.Nested(details, required=True),
            "__doc__": f"A {type_name.replace('_', ' ')} record: the common core and its details.",
        },
    )


RECORD_SCHEMAS: dict[str, type[RecordSchema]] = {
    type_name: _record_schema(type_name, details) for type_name, details in DETAILS_SCHEMAS.items()
}
