"""From an outbox row to a message: what each recipient may read, on which channel.

Content is minimal by rule (models/messages.py); minutes travel as an attachment only on a
channel whose clearance covers every item the recipient may receive, everyone else gets a
pointer. Calendar parts go by email only.
"""

from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session, col, select

from models.calendar import conference_calendar
from models.channels import Outgoing
from models.conference import audience, plan_items
from models.messages import Event, MessageContext, render
from models.profile import RANK, load_profile
from models.tables import (
    ActionItem,
    Agency,
    Case,
    Channel,
    Conference,
    InformationItem,
    Notification,
    Review,
)
from models.vocabulary import ChannelKind, Classification, ConferenceType, Role

MINUTES_POINTER = {
    "en": "The minutes are not sent on this channel: ask the coordinator for your copy.",
    "de": "Das Protokoll wird über diesen Kanal nicht versandt: Bitte fordern Sie Ihre Ausfertigung bei der Koordination an.",
}
ACTION_POINTER = {
    "en": "action no. {number}, as worded in the minutes (ask the coordinator for your copy)",
    "de": "Maßnahme Nr. {number}, Wortlaut im Protokoll (Ausfertigung bei der Koordination)",
}
CALENDAR_METHOD = {
    Event.invitation: "REQUEST",
    Event.handover_request: "REQUEST",
    Event.rescheduled: "REQUEST",
    Event.cancelled: "CANCEL",
}


def minutes_text(session: Session, *, conference: Conference, allowed: set[Classification]) -> str:
    """The minutes one audience may read: its information items, the plan, the actions."""
    agencies = {a.id: a.code for a in session.exec(select(Agency))}
    lines = [f"Minutes, conference cycle {conference.cycle}", "", "Information"]
    items = session.exec(
        select(InformationItem)
        .where(InformationItem.conference_id == conference.id)
        .order_by(col(InformationItem.id))
    )
    for item in items:
        if item.classification not in allowed:
            continue
        text = (
            item.summary
            if item.classification != Classification.restricted
            else (f"held by {agencies[item.agency_id]}: {item.pointer}")
        )
        lines.append(f"- [{item.classification}] {agencies[item.agency_id]}: {text}")
    lines += ["", "Plan and decisions"]
    for p in plan_items(session, conference_id=conference.id):  # type: ignore[arg-type]
        amended = f" -> {p.amendment}" if p.amendment else ""
        lines.append(f"{p.number}. {p.text} [{p.outcome}]{amended}")
    lines += ["", "Actions"]
    for a in session.exec(select(ActionItem).where(ActionItem.conference_id == conference.id)):
        lines.append(
            f"- no. {a.id}, {agencies[a.owner_agency_id]}: {a.description} (due {a.due_on})"
        )
    return "\n".join(lines) + "\n"


def compose(
    session: Session,
    *,
    notification: Notification,
    mail_from: str,
    duration: timedelta,
    now: datetime,
) -> Outgoing:
    """The message for one outbox row, rendered in the recipient agency's language."""
    case = session.get(Case, notification.case_id)
    conference = session.get(Conference, notification.conference_id)
    agency = session.get(Agency, notification.recipient_agency_id)
    channel = session.exec(select(Channel).where(Channel.tag == notification.channel)).one()
    assert case is not None and conference is not None and agency is not None
    event = Event(notification.event)
    role = Role(notification.recipient_role)
    action = None
    if "action_id" in notification.detail:
        action = session.get(ActionItem, notification.detail["action_id"])
    review = None
    if "review_id" in notification.detail:
        review = session.get(Review, notification.detail["review_id"])
    attachments: list[tuple[str, bytes]] = []
    attached = False
    if event == Event.minutes:
        allowed = audience(
            role=role,
            conference_type=ConferenceType(conference.conference_type),
            profile=load_profile(case.profile),
            kinds=agency.kinds,
            agency_clearance=Classification(agency.clearance),
        )
        cleared = (
            all(RANK[c] <= RANK[Classification(channel.clearance)] for c in allowed)
            and channel.kind == ChannelKind.email
        )
        if cleared:
            text = minutes_text(session, conference=conference, allowed=allowed)
            attachments.append(("minutes.txt", text.encode()))
            attached = True
    context = MessageContext(
        reference=case.reference,
        recipient_role="intermediary" if event == Event.handover_request else str(role),
        # Only to the referring agency itself, and only on a channel cleared beyond `shared`:
        # a file number names a person in the agency's own records.
        agency_file_number=(
            case.referral_file_number
            if agency.id == case.referring_agency_id
            and RANK[Classification(channel.clearance)] >= RANK[Classification.professional]
            else None
        ),
        starts_at=review.due_at if review else conference.starts_at,
        time_zone=conference.time_zone,
        location=conference.location,
        cycle=conference.cycle,
        # The action's own wording was typed into a form: it travels in the minutes (cleared
        # channels only), never in a message. The message names the action by its number.
        action_description=(
            ACTION_POINTER.get(agency.language.split("-")[0], ACTION_POINTER["en"]).format(
                number=action.id
            )
            if action
            else None
        ),
        action_due_on=action.due_on if action else None,
        owner_agency=(
            next(
                a.code
                for a in session.exec(select(Agency).where(Agency.id == action.owner_agency_id))
            )
            if action
            else None
        ),
        minutes_pointer=None
        if attached
        else MINUTES_POINTER.get(agency.language.split("-")[0], MINUTES_POINTER["en"]),
        minutes_attached=attached,
        previous_starts_at=_previous_due_at(session, notification),
    )
    kind: Literal["email", "chat"] = "email" if channel.kind == ChannelKind.email else "chat"
    message = render(event=event, kind=kind, language=agency.language, context=context)
    calendar = None
    method = CALENDAR_METHOD.get(event)
    if method and kind == "email" and conference.starts_at is not None:
        calendar = conference_calendar(
            uid=conference.ical_uid,
            sequence=conference.ical_sequence,
            method=method,  # type: ignore[arg-type]
            starts_at=review.due_at if review else conference.starts_at,
            duration=duration,
            time_zone=conference.time_zone,
            location=conference.location or "",
            summary=f"Case conference {case.reference}",
            organizer=mail_from,
            attendees=[],
            stamp=now,
        )
    return Outgoing(
        tag=channel.tag,
        subject=message.subject,
        body=message.body,
        calendar=calendar,
        attachments=tuple(attachments),
    )


def _previous_due_at(session: Session, notification: Notification) -> datetime | None:
    """A moved review's former date (`review_moved` messages carry both dates)."""
    previous_id = notification.detail.get("previous_review_id")
    previous = session.get(Review, previous_id) if previous_id is not None else None
    return previous.due_at if previous else None
