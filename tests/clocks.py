"""Moments at which date rules have broken or could break, given to the rules as their "now".

Tests take one of these (or compute the real "now" once, at their start) and derive every date
from it: no test assumes winter time, a year, or that it ends on the day it began.
"""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

VIENNA = ZoneInfo("Europe/Vienna")

#: name -> the moment, in UTC. Vienna changes its clocks at 01:00 UTC on the last Sunday of
#: March (02:00 CET -> 03:00 CEST) and of October (03:00 CEST -> 02:00 CET).
CLOCKS: dict[str, datetime] = {
    "winter-morning": datetime(2034, 1, 16, 9, 0, tzinfo=UTC),
    "winter-2330-utc": datetime(2034, 1, 16, 23, 30, tzinfo=UTC),
    "summer-2330-utc": datetime(2034, 7, 16, 23, 30, tzinfo=UTC),
    "new-years-eve-2330-utc": datetime(2031, 12, 31, 23, 30, tzinfo=UTC),
    "night-summer-time-starts": datetime(2034, 3, 26, 0, 30, tzinfo=UTC),
    "after-summer-time-starts": datetime(2034, 3, 26, 23, 30, tzinfo=UTC),
    "night-summer-time-ends": datetime(2034, 10, 29, 0, 30, tzinfo=UTC),
    "eve-summer-time-ends": datetime(2034, 10, 28, 23, 30, tzinfo=UTC),
}

#: The days Vienna changes its clocks in 2034.
SUMMER_TIME_STARTS = date(2034, 3, 26)
SUMMER_TIME_ENDS = date(2034, 10, 29)


def vienna_today(now: datetime) -> date:
    """The calendar day in Vienna at `now` (at 23:30 UTC it is already the next one)."""
    return now.astimezone(VIENNA).date()
