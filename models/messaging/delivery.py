"""From an outbox row to a message: what each recipient may read, on which channel.

Content is minimal by rule (models/messaging/messages.py); minutes travel as an attachment only on a
channel whose clearance covers every item the recipient may receive (models/rules/release.py
`minutes_for` decides which), everyone else gets a pointer. Calendar parts go by email only;
a hand-over carries the calendar as a file to hand on, not as an iMIP part.
"""

from datetime import datetime, timedelta
from typing import Literal

from sqlmodel import Session, col, select

from models.config.profile import RANK
from models.messaging.calendar import conference_calendar
from models.messaging.channels import Outgoing
from models.messaging.messages import Event, MessageContext, render
from models.record.tables import (
    ActionItem,
    Agency,
    Case,
    Channel,
    Conference,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Review,
)
from models.rules.handover import HANDED_OVER_ROLES, handover_file_name, handover_for
from models.rules.release import Minutes, minutes_for
from models.rules.stages import case_today
from models.vocabulary import PROFESSIONAL_ROLES, ChannelKind, Classification, Role

MINUTES_POINTER = {
    "en": "The minutes are not sent on this channel: ask the coordinator for your copy.",
    "de": "Das Protokoll wird über diesen Kanal nicht versandt: Bitte fordern Sie Ihre Ausfertigung bei der Koordination an.",
}
ACTION_POINTER = {
    "en": "action no. {number}, as worded in the minutes (ask the coordinator for your copy)",
    "de": "Maßnahme Nr. {number}, Wortlaut im Protokoll (Ausfertigung bei der Koordination)",
}
CALENDAR_METHOD: dict[Event, Literal["REQUEST", "CANCEL", "PUBLISH"]] = {
    Event.invitation: "REQUEST",
    Event.handover_request: "PUBLISH",
    Event.rescheduled: "REQUEST",
    Event.cancelled: "CANCEL",
    Event.invitation_updated: "REQUEST",
    Event.participation_cancelled: "CANCEL",
    Event.handover_withdrawn: "CANCEL",
}
#: Events whose calendar is a file for the intermediary to hand over, not an iMIP part.
HANDOVER_FILE = frozenset({Event.handover_request, Event.handover_withdrawn})


def minutes_text(session: Session, *, conference: Conference, minutes: Minutes) -> str:
    """The minutes one participant may read: its information items, plan items and actions."""
    agencies = {a.id: a.code for a in session.exec(select(Agency))}
    lines = [f"Minutes, conference cycle {conference.cycle}", "", "Information"]
    for item_id in minutes.information_ids:
        item = session.get(InformationItem, item_id)
        assert item is not None
        text = (
            item.summary
            if item.classification != Classification.restricted
            else (f"held by {agencies[item.agency_id]}: {item.pointer}")
        )
        lines.append(f"- [{item.classification}] {agencies[item.agency_id]}: {text}")
    lines += ["", "Plan and decisions"]
    for plan_id in minutes.plan_ids:
        p = session.get(PlanItem, plan_id)
        assert p is not None
        amended = f" -> {p.amendment}" if p.amendment else ""
        lines.append(f"{p.number}. [{p.classification}] {p.text} [{p.outcome}]{amended}")
    lines += ["", "Actions"]
    for action_id in minutes.action_ids:
        a = session.get(ActionItem, action_id)
        assert a is not None
        owner = agencies[a.owner_agency_id]
        if a.owner_role:
            owner = f"{a.owner_role} (through {owner})"
        lines.append(
            f"- no. {a.id} [{a.classification}], {owner}: {a.description} (due {a.due_on})"
        )
    return "\n".join(lines) + "\n"


def recipient_participant(session: Session, notification: Notification) -> Participant | None:
    """The participant an outbox row is addressed to (None if it no longer takes part)."""
    wanted = notification.detail.get("participant_id")
    if wanted is not None:
        row = session.get(Participant, wanted)
        return row if row is not None and row.conference_id == notification.conference_id else None
    role = Role(notification.recipient_role)
    column = (
        Participant.agency_id if role in PROFESSIONAL_ROLES else Participant.intermediary_agency_id
    )
    return session.exec(
        select(Participant)
        .where(
            Participant.conference_id == notification.conference_id,
            Participant.role == role,
            column == notification.recipient_agency_id,
        )
        .order_by(col(Participant.id))
    ).first()


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
    minutes = _cleared_minutes(
        session, notification, case=case, conference=conference, channel=channel, now=now
    )
    if minutes is not None:
        attachments.append(("minutes.txt", minutes.encode()))
    target = notification.detail.get("for")
    if action is not None and action.owner_role is not None and role in HANDED_OVER_ROLES:
        target = handover_for(action.owner_role, None)
    context = _context(
        session,
        notification,
        case=case,
        conference=conference,
        agency=agency,
        channel=channel,
        recipient_role="intermediary" if target else str(role),
        handover_for=str(target) if target and event != Event.minutes else None,
        action=action,
        review=review,
        attached=minutes is not None,
    )
    kind: Literal["email", "chat"] = "email" if channel.kind == ChannelKind.email else "chat"
    message = render(event=event, kind=kind, language=agency.language, context=context)
    calendar = None
    method = CALENDAR_METHOD.get(event)
    if method and kind == "email" and conference.starts_at is not None:
        ics = conference_calendar(
            uid=conference.ical_uid,
            sequence=conference.ical_sequence,
            method=method,
            starts_at=review.due_at if review else conference.starts_at,
            duration=duration,
            time_zone=conference.time_zone,
            location=conference.location or "",
            summary=f"Case conference {case.reference}",
            organizer=mail_from,
            attendees=[],
            stamp=now,
        )
        if event in HANDOVER_FILE:
            # For someone without a mailbox: a file to hand over, never a meeting request
            # into the intermediary's own calendar (it gets its own invitation if it attends).
            attachments.append((handover_file_name(str(target)), ics.encode()))
        else:
            calendar = ics
    return Outgoing(
        tag=channel.tag,
        subject=message.subject,
        body=message.body,
        calendar=calendar,
        attachments=tuple(attachments),
    )


def _cleared_minutes(
    session: Session,
    notification: Notification,
    *,
    case: Case,
    conference: Conference,
    channel: Channel,
    now: datetime,
) -> str | None:
    """The recipient's minutes as text, for a minutes row on an e-mail channel cleared for
    everything they hold; None otherwise (the message then points to them)."""
    participant = recipient_participant(session, notification)
    if Event(notification.event) != Event.minutes or participant is None:
        return None
    minutes = minutes_for(
        session,
        case=case,
        conference=conference,
        participant=participant,
        today=case_today(session, case=case, now=now),  # share_with expiry: the case's day
    )
    cleared = (
        all(RANK[c] <= RANK[Classification(channel.clearance)] for c in minutes.classifications)
        and channel.kind == ChannelKind.email
    )
    return minutes_text(session, conference=conference, minutes=minutes) if cleared else None


def _context(
    session: Session,
    notification: Notification,
    *,
    case: Case,
    conference: Conference,
    agency: Agency,
    channel: Channel,
    recipient_role: str,
    handover_for: str | None,
    action: ActionItem | None,
    review: Review | None,
    attached: bool,
) -> MessageContext:
    """What the templates may say: codes, dates and pointers, never a form's free text."""
    language = agency.language.split("-")[0]
    return MessageContext(
        reference=case.reference,
        recipient_role=recipient_role,
        handover_for=handover_for,
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
            ACTION_POINTER.get(language, ACTION_POINTER["en"]).format(number=action.id)
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
        minutes_pointer=None if attached else MINUTES_POINTER.get(language, MINUTES_POINTER["en"]),
        minutes_attached=attached,
        previous_starts_at=_previous_due_at(session, notification),
    )


def _previous_due_at(session: Session, notification: Notification) -> datetime | None:
    """A moved review's former date (`review_moved` messages carry both dates)."""
    previous_id = notification.detail.get("previous_review_id")
    previous = session.get(Review, previous_id) if previous_id is not None else None
    return previous.due_at if previous else None
