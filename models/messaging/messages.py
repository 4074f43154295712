"""Message texts (email and chat) rendered from Jinja2 templates, minimal by rule.

A message carries the case reference, the agency's own file number when given, date,
time, place or link, the recipient's role and what is asked; action events add the
action's description and due date. Never a name, an information item or a reason.
Each event's template only sees the variables listed in `_VARIABLES` (StrictUndefined
turns any other into an error), so a field cannot leak into a message by accident.
"""

import functools
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pendulum

if TYPE_CHECKING:
    from jinja2 import Environment

from models.rules.handover import Relation

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
LANGUAGES = ("en", "de")
DEFAULT_LANGUAGE = "en"
RECIPIENT_ROLES = frozenset(
    {
        "lead",
        "coordinator",
        "core",
        "case_dependent",
        "client",
        "family",
        "observer",
        "intermediary",
    }
)
_AGENCY_ROLES = frozenset({"lead", "coordinator", "core", "case_dependent"})
#: Whom a hand-over may be for (models/rules/handover.py `handover_for`).
HANDOVER_TARGETS = frozenset({"client", "family"} | {f"family:{r}" for r in Relation})
_LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"

# (date and time, date) formats per language, pendulum tokens.
_FORMATS = {
    "en": ("dddd D MMMM YYYY, HH:mm", "dddd D MMMM YYYY"),
    "de": ("dddd, D. MMMM YYYY, HH:mm [Uhr]", "dddd, D. MMMM YYYY"),
}


class Event(StrEnum):
    """What a message is about; one template pair (email, chat) per language."""

    invitation = "invitation"
    reminder = "reminder"
    rescheduled = "rescheduled"
    cancelled = "cancelled"
    consent_withdrawn = "consent_withdrawn"
    minutes = "minutes"
    action_assigned = "action_assigned"
    action_due_soon = "action_due_soon"
    action_overdue = "action_overdue"
    action_escalation = "action_escalation"
    review_due = "review_due"
    handover_request = "handover_request"
    review_moved = "review_moved"
    review_cancelled = "review_cancelled"
    review_run_cancelled = "review_run_cancelled"  # cancelled or deleted in Prefect
    case_run_cancelled = "case_run_cancelled"  # the case's own run, cancelled by hand
    invitation_updated = "invitation_updated"  # same meeting, another list of participants
    participation_cancelled = "participation_cancelled"  # the meeting goes on without them
    handover_withdrawn = "handover_withdrawn"  # the meeting no longer includes whom it was for


_BASE = ("reference", "file_number", "role")
_MEETING = (*_BASE, "when", "location")
# `handover_for`: set when the action is the client's or a family member's, reached through
# the recipient (their intermediary).
_ACTION = (*_BASE, "action_description", "due", "handover_for")

# The only variables each event's templates may use.
_VARIABLES: dict[Event, tuple[str, ...]] = {
    Event.invitation: _MEETING,
    Event.reminder: _MEETING,
    Event.rescheduled: _MEETING,
    Event.cancelled: (*_BASE, "when"),
    Event.consent_withdrawn: _BASE,
    Event.minutes: (*_BASE, "cycle", "minutes_attached", "minutes_pointer"),
    Event.action_assigned: _ACTION,
    Event.action_due_soon: _ACTION,
    Event.action_overdue: _ACTION,
    Event.action_escalation: (*_ACTION, "owner_agency"),
    Event.review_due: (*_BASE, "cycle", "when"),
    Event.handover_request: (*_MEETING, "handover_for"),
    Event.review_moved: (*_BASE, "when", "previous_when"),
    Event.review_cancelled: (*_BASE, "when"),
    Event.review_run_cancelled: (*_BASE, "when"),
    Event.case_run_cancelled: (*_BASE, "cycle"),
    Event.invitation_updated: _MEETING,
    Event.participation_cancelled: (*_BASE, "when"),
    Event.handover_withdrawn: (*_BASE, "when", "handover_for"),
}

# Context fields an event cannot do without.
_REQUIRED: dict[Event, tuple[str, ...]] = {
    Event.invitation: ("starts_at", "location"),
    Event.reminder: ("starts_at", "location"),
    Event.rescheduled: ("starts_at", "location"),
    Event.cancelled: ("starts_at",),
    Event.action_assigned: ("action_description", "action_due_on"),
    Event.action_due_soon: ("action_description", "action_due_on"),
    Event.action_overdue: ("action_description", "action_due_on"),
    Event.action_escalation: ("action_description", "action_due_on", "owner_agency"),
    Event.handover_request: ("starts_at", "location", "handover_for"),
    Event.invitation_updated: ("starts_at", "location"),
    Event.participation_cancelled: ("starts_at",),
    Event.handover_withdrawn: ("starts_at", "handover_for"),
    Event.review_moved: ("starts_at",),
    Event.review_cancelled: ("starts_at",),
    Event.review_run_cancelled: ("starts_at",),
}

# Who may receive an event (absent: anyone).
_RECIPIENTS: dict[Event, frozenset[str]] = {
    Event.action_assigned: _AGENCY_ROLES | {"intermediary"},
    Event.action_due_soon: _AGENCY_ROLES | {"intermediary"},
    Event.action_overdue: _AGENCY_ROLES | {"intermediary"},
    Event.action_escalation: frozenset({"lead"}),
    Event.handover_request: frozenset({"intermediary"}),
    Event.handover_withdrawn: frozenset({"intermediary"}),
    Event.invitation_updated: _AGENCY_ROLES | {"observer"},
    Event.participation_cancelled: _AGENCY_ROLES | {"observer"},
    Event.review_moved: _AGENCY_ROLES,
    Event.review_cancelled: _AGENCY_ROLES,
    Event.review_run_cancelled: _AGENCY_ROLES,
    Event.case_run_cancelled: _AGENCY_ROLES,
}


@dataclass(frozen=True)
class MessageContext:
    """Everything a message may draw on; no names, no case content."""

    reference: str
    recipient_role: str
    agency_file_number: str | None
    starts_at: datetime | None
    time_zone: str
    location: str | None
    cycle: int
    action_description: str | None
    action_due_on: date | None
    owner_agency: str | None
    minutes_pointer: str | None
    minutes_attached: bool
    previous_starts_at: datetime | None = None  # a moved review's former date
    # Whom a hand-over is for: client, family or family:<relation> (models/rules/handover.py).
    handover_for: str | None = None

    def __post_init__(self) -> None:
        """Reject values a message cannot carry safely."""
        if not self.reference.strip():
            raise ValueError("reference must not be empty")
        if self.recipient_role not in RECIPIENT_ROLES:
            raise ValueError(f"unknown recipient role: {self.recipient_role!r}")
        for name in ("reference", "agency_file_number", "location", "owner_agency", "time_zone"):
            value = getattr(self, name)
            if value is not None and any(char in _LINE_BREAKS for char in value):
                raise ValueError(f"{name} must be a single line")
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone: {self.time_zone!r}") from error
        for name in ("starts_at", "previous_starts_at"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must be timezone-aware")
        if self.cycle < 0:
            raise ValueError("cycle must not be negative")
        if self.handover_for is not None and self.handover_for not in HANDOVER_TARGETS:
            raise ValueError(f"unknown hand-over target: {self.handover_for!r}")


@dataclass(frozen=True)
class RenderedMessage:
    """A rendered message; `subject` is empty for chat."""

    subject: str
    body: str


@functools.cache
def _environment() -> "Environment":
    """The templates' Jinja2 environment, made on the first message (a run that sends none
    never imports Jinja2)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def resolve_language(language: str) -> str:
    """The template language for `language` ("de-AT" -> "de"); English when unknown."""
    primary = language.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def _variables(event: Event, language: str, context: MessageContext) -> dict[str, Any]:
    """The template variables allowed for `event`, with dates formatted for `language`."""
    moment, day = _FORMATS[language]

    def shown(at: datetime | None) -> str | None:
        if at is None:
            return None
        local = pendulum.instance(at).in_timezone(context.time_zone)
        return f"{local.format(moment, locale=language)} ({context.time_zone})"

    due = None
    if context.action_due_on is not None:
        on = context.action_due_on
        due = pendulum.date(on.year, on.month, on.day).format(day, locale=language)
    available: dict[str, Any] = {
        "reference": context.reference,
        "file_number": context.agency_file_number,
        "role": context.recipient_role,
        "when": shown(context.starts_at),
        "previous_when": shown(context.previous_starts_at),
        "location": context.location,
        "cycle": context.cycle,
        "action_description": context.action_description,
        "due": due,
        "owner_agency": context.owner_agency,
        "minutes_attached": context.minutes_attached,
        "minutes_pointer": context.minutes_pointer,
        "handover_for": context.handover_for,
    }
    return {name: available[name] for name in _VARIABLES[event]}


def _check(event: Event, context: MessageContext) -> None:
    """ValueError when `context` lacks what `event` needs or goes to the wrong role."""
    missing = [name for name in _REQUIRED.get(event, ()) if getattr(context, name) is None]
    if event is Event.minutes and not context.minutes_attached and not context.minutes_pointer:
        missing.append("minutes_pointer")
    if missing:
        raise ValueError(f"{event} needs {', '.join(missing)}")
    allowed = _RECIPIENTS.get(event)
    if allowed is not None and context.recipient_role not in allowed:
        raise ValueError(f"{event} may not go to role {context.recipient_role!r}")


def render(
    *, event: Event, kind: Literal["email", "chat"], language: str, context: MessageContext
) -> RenderedMessage:
    """Render `event` as an email (subject and body) or a chat text (subject "")."""
    event = Event(event)
    if kind not in ("email", "chat"):
        raise ValueError(f"kind must be email or chat, not {kind!r}")
    _check(event, context)
    chosen = resolve_language(language)
    template = _environment().get_template(f"{chosen}/{event.value}.{kind}.j2")
    text = template.render(_variables(event, chosen, context))
    if kind == "chat":
        return RenderedMessage(subject="", body=text.strip())
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject: ") or not rest.startswith("\n"):
        raise RuntimeError(f"template {template.name} must start with 'Subject: ' and a blank line")
    return RenderedMessage(
        subject=first.removeprefix("Subject: ").strip(), body=rest.strip() + "\n"
    )
