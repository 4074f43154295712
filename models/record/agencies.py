"""The agency directory in the record: agencies, representatives, channels and venues, brought in
line with the validated directory file (rows are never deleted: those gone become inactive)."""

from typing import Any, TypeVar

from sqlmodel import Session, select

from models.config.directory import Directory
from models.record.database import saved_id
from models.record.tables import Agency, Channel, Representative, Venue


def sync_directory(session: Session, directory: Directory) -> None:
    """Upsert agencies, representatives, channels and venues; those gone from the file become
    inactive.

    Works inside the caller's transaction (it flushes, never commits), so a failure leaves
    the tables as they were once the caller's `session_scope` rolls back.
    """
    agencies = _upsert(
        session,
        Agency,
        "code",
        {
            entry.code: {
                "name": entry.name,
                "kinds": [str(kind) for kind in entry.kinds],
                "time_zone": entry.time_zone,
                "language": entry.language,
                "area": entry.area,
                "scope": entry.scope,
                "clearance": entry.clearance,
            }
            for entry in directory.agencies
        },
    )
    agency_ids = {entry.code: saved_id(agencies[entry.code]) for entry in directory.agencies}
    _upsert(
        session,
        Representative,
        "code",
        {
            rep.code: {"agency_id": agency_ids[entry.code], "name": rep.name}
            for entry in directory.agencies
            for rep in entry.representatives
        },
    )
    _upsert(
        session,
        Channel,
        "tag",
        {
            channel.tag: {
                "agency_id": agency_ids[entry.code],
                "kind": channel.kind,
                "clearance": channel.clearance,
            }
            for entry in directory.agencies
            for channel in entry.channels
        },
    )
    # A venue gone from the file becomes inactive; a conference keeps the label it was given.
    _upsert(
        session,
        Venue,
        "code",
        {
            venue.code: {"agency_id": agency_ids[entry.code], "label": venue.label}
            for entry in directory.agencies
            for venue in entry.venues
        },
    )


Synced = TypeVar("Synced", Agency, Representative, Channel, Venue)


def _upsert(
    session: Session, table: type[Synced], key: str, listed: dict[str, dict[str, Any]]
) -> dict[str, Synced]:
    """Rows of `table` by `key`: each listed one gets its values and is active, every other
    becomes inactive (rows are never deleted: the record refers to them). Flushes, so new rows
    have their ids; returns every row by key."""
    rows = {getattr(row, key): row for row in session.exec(select(table)).all()}
    for code, values in listed.items():
        row = rows.get(code) or table(**{key: code, **values})
        for name, value in values.items():
            setattr(row, name, value)
        row.active = True
        rows[code] = row
        session.add(row)
    for code, row in rows.items():
        if code not in listed and row.active:
            row.active = False
            session.add(row)
    session.flush()
    return rows
