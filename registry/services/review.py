"""The Secretariat's review actions. So far: raising the tier of a record, a file or a field."""

from __future__ import annotations

from .. import policy, search
from ..db import session
from ..errors import Forbidden, Invalid
from ..models import File, Record
from ..policy import Viewer


def raise_tier(viewer: Viewer, obj: Record | File, tier: str, field: str | None = None) -> None:
    """Make ``obj`` (or its sensitive ``field``) stricter: it takes effect everywhere once committed.

    The Secretariat may raise a tier, never silently lower it. Raises Forbidden for anyone else,
    Invalid for an unknown tier or field, or a tier that is not stricter than the current one.
    """
    if not policy.can(viewer, "mark_confidential", obj):
        raise Forbidden("mark_confidential")
    if tier not in policy.allowed_tiers(policy.CONFIDENTIAL):
        raise Invalid({"tier": ["Unknown tier."]})
    record = obj if isinstance(obj, Record) else obj.record
    if field is not None:
        if not isinstance(obj, Record) or field not in policy.SENSITIVE_FIELDS.get(record.type, {}):
            raise Invalid({"field": ["This record has no such confidential field."]})
        current = policy.field_tier(record, field)
    else:
        current = obj.tier
    if policy.rank(tier) <= policy.rank(current):
        raise Invalid({"tier": ["A tier can only be raised here."]})
    if field is not None:
        record.field_tiers = {**(record.field_tiers or {}), field: tier}
    else:
        obj.tier = tier
    if isinstance(obj, Record) and field is None:
        record.peak_tier = policy.strictest(record.peak_tier, tier)
    search.enqueue(record.id, purge=True)
    session.flush()
