"""Conference calendar invitations: RFC 5545 text read back with icalendar."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from models.messaging.calendar import PRODID, conference_calendar

VIENNA = ZoneInfo("Europe/Vienna")


def _ics(
    *,
    starts_at: datetime = datetime(2027, 1, 12, 9, 0, tzinfo=UTC),
    method: Literal["REQUEST", "CANCEL"] = "REQUEST",
    time_zone: str = "Europe/Vienna",
    sequence: int = 2,
    stamp: datetime = datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
) -> str:
    return conference_calendar(
        uid="CASE-2026-0042-c1@caseconf",
        sequence=sequence,
        method=method,
        starts_at=starts_at,
        duration=timedelta(hours=2),
        time_zone=time_zone,
        location="Neustart, Room 3",
        summary="Case conference CASE-2026-0042",
        organizer="coordinator@example.org",
        attendees=["police@example.org", "mailto:probation@example.org"],
        stamp=stamp,
    )


def _event(text: str) -> tuple[Any, Any]:
    calendar = Calendar.from_ical(text)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def test_request_reads_back() -> None:
    calendar, event = _event(_ics())
    assert str(calendar["PRODID"]) == PRODID
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == "CASE-2026-0042-c1@caseconf"
    assert int(event["SEQUENCE"]) == 2
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Case conference CASE-2026-0042"
    assert str(event["LOCATION"]) == "Neustart, Room 3"
    assert event["DTSTAMP"].dt == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    assert str(event["ORGANIZER"]) == "mailto:coordinator@example.org"
    attendees = event["ATTENDEE"]
    assert [str(a) for a in attendees] == [
        "mailto:police@example.org",
        "mailto:probation@example.org",
    ]
    for attendee in attendees:
        assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
        assert attendee.params["RSVP"] == "TRUE"


@pytest.mark.parametrize(
    ("starts_at", "offset"),
    [
        (datetime(2027, 1, 12, 9, 0, tzinfo=UTC), timedelta(hours=1)),  # CET
        (datetime(2027, 7, 13, 8, 0, tzinfo=UTC), timedelta(hours=2)),  # CEST
        # Given in another zone: still 10:00 in Vienna.
        (datetime(2027, 1, 12, 4, 0, tzinfo=ZoneInfo("America/New_York")), timedelta(hours=1)),
    ],
)
def test_start_is_ten_oclock_vienna_time(starts_at: datetime, offset: timedelta) -> None:
    text = _ics(starts_at=starts_at)
    assert "DTSTART;TZID=Europe/Vienna:" in text
    assert "DTEND;TZID=Europe/Vienna:" in text
    _, event = _event(text)
    start = event["DTSTART"]
    assert start.params["TZID"] == "Europe/Vienna"
    assert (start.dt.hour, start.dt.minute) == (10, 0)
    assert start.dt.utcoffset() == offset
    assert start.dt == starts_at
    assert event["DTEND"].dt - start.dt == timedelta(hours=2)


def test_vtimezone_matches_tzid() -> None:
    calendar, _ = _event(_ics())
    timezones = calendar.walk("VTIMEZONE")
    assert [str(tz["TZID"]) for tz in timezones] == ["Europe/Vienna"]
    assert timezones[0].walk("DAYLIGHT") and timezones[0].walk("STANDARD")


def test_cancel() -> None:
    text = _ics(method="CANCEL", sequence=3)
    calendar, event = _event(text)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 3
    assert "STATUS:CANCELLED" in text


def test_stamp_is_written_in_utc() -> None:
    stamp = datetime(2026, 12, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    text = _ics(stamp=stamp)
    assert "DTSTAMP:20261201T083000Z" in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"starts_at": datetime(2027, 1, 12, 9, 0)},
        {"stamp": datetime(2026, 12, 1, 8, 30)},
        {"time_zone": "Europe/Nowhere"},
        {"time_zone": ""},
        {"time_zone": "../etc/passwd"},
    ],
)
def test_rejects_naive_datetimes_and_unknown_zones(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _ics(**kwargs)  # type: ignore[arg-type]
