"""Calendar invitations (RFC 5545 / iTIP) for a conference, made with the icalendar library."""

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from icalendar import vCalAddress

PRODID = "-//caseconf//caseconf//EN"


def _zone(time_zone: str) -> ZoneInfo:
    """The IANA zone named `time_zone`; ValueError when it is unknown."""
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as error:
        raise ValueError(f"unknown time zone: {time_zone!r}") from error


def _aware(value: datetime, name: str) -> datetime:
    """`value` itself; ValueError when it is naive."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def _address(email: str) -> "vCalAddress":
    """A mailto: calendar address for `email` (a mailto: prefix is accepted as given)."""
    from icalendar import vCalAddress

    email = email.strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    if not email or any(char.isspace() for char in email):
        raise ValueError(f"not an email address: {email!r}")
    return vCalAddress(f"mailto:{email}")


def conference_calendar(
    *,
    uid: str,
    sequence: int,
    method: Literal["REQUEST", "CANCEL", "PUBLISH"],
    starts_at: datetime,
    duration: timedelta,
    time_zone: str,
    location: str,
    summary: str,
    organizer: str,
    attendees: list[str],
    stamp: datetime,
) -> str:
    """The iCalendar text of one conference: a REQUEST (invite or update), a CANCEL, or a
    PUBLISH (a file handed over to someone without a mailbox: no request to its carrier).

    Start and end are written in the conference's own zone (TZID plus VTIMEZONE), so
    10:00 in Vienna is 10:00 Europe/Vienna for every recipient. Carries only what is
    given: put no case content in `summary` or `location`.
    """
    from icalendar import Calendar, Event  # only when an invitation is made

    if method not in ("REQUEST", "CANCEL", "PUBLISH"):
        raise ValueError(f"method must be REQUEST, CANCEL or PUBLISH, not {method!r}")
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    zone = _zone(time_zone)
    start = _aware(starts_at, "starts_at").astimezone(zone)
    end = (start.astimezone(UTC) + duration).astimezone(zone)
    dtstamp = _aware(stamp, "stamp").astimezone(UTC)

    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", dtstamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("location", location)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("organizer", _address(organizer))
    for attendee in attendees:
        address = _address(attendee)
        address.params["ROLE"] = "REQ-PARTICIPANT"
        address.params["RSVP"] = "TRUE"
        event.add("attendee", address)

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(event)
    # VTIMEZONE for the TZID used (none is needed when the zone is UTC itself).
    calendar.add_missing_timezones(
        first_date=date(start.year - 1, 1, 1), last_date=date(end.year + 2, 1, 1)
    )
    return calendar.to_ical().decode("utf-8")
