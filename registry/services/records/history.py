"""The published versions of a record: kept at each publication, listed and compared."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ...db import session
from ...models import Record, RecordVersion
from ...policy import Viewer
from .read import require
from .shape import record_shape


def versions(viewer: Viewer, record: Record) -> list[RecordVersion]:
    """The published versions of ``record``, newest first (its Party and the Secretariat only)."""
    require(viewer, "see_history", record)
    return list(
        session.scalars(
            select(RecordVersion)
            .where(RecordVersion.record_id == record.id)
            .order_by(RecordVersion.number.desc())
        )
    )


def last_published(record: Record) -> dict[str, Any] | None:
    """The payload of the record's latest published version, or None if it was never published."""
    return session.scalar(
        select(RecordVersion.payload)
        .where(RecordVersion.record_id == record.id)
        .order_by(RecordVersion.number.desc())
        .limit(1)
    )


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """What differs between two JSON shapes, as (field path, old value, new value), in field order."""
    rows: list[tuple[str, Any, Any]] = []

    def walk(path: str, a: Any, b: Any) -> None:
        if isinstance(a, dict) and isinstance(b, dict) and path != "files":
            for key in dict.fromkeys([*b, *a]):
                walk(f"{path}.{key}" if path else key, a.get(key), b.get(key))
        elif a != b:
            rows.append((path, a, b))

    walk("", old or {}, new)
    return rows


def latest_version_number(record: Record) -> int:
    return (
        session.scalar(
            select(func.coalesce(func.max(RecordVersion.number), 0)).where(
                RecordVersion.record_id == record.id
            )
        )
        or 0
    )


def keep_version(viewer: Viewer, record: Record) -> None:
    session.flush()
    session.add(
        RecordVersion(
            record_id=record.id,
            number=latest_version_number(record) + 1,
            payload=record_shape(record),
            published_by=getattr(viewer, "email", "") or "",
        )
    )
