"""Invitations: one per participant and channel, queued in the outbox once per key.

Client and family have no channel of their own: their invitation goes to the intermediary
agency as a hand-over request, and the coordinator records the hand-over.
"""

from datetime import datetime

from sqlmodel import Session, select

from models.errors import Refusal
from models.record.audit import audit
from models.record.database import saved_id
from models.record.outbox import queue_to_agency
from models.record.tables import Case, Conference, Notification, Participant
from models.rules.handover import handover_for, handover_recipient
from models.vocabulary import PROFESSIONAL_ROLES, ConferenceType, NotificationStatus, Role


def queue_invitations(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    now: datetime,
    event: str = "invitation",
) -> list[int]:
    """Queue `event` (invitation, rescheduled, cancelled) to every participant on every channel."""
    ids: list[int] = []
    for participant in session.exec(
        select(Participant).where(Participant.conference_id == conference.id)
    ):
        if participant.role not in PROFESSIONAL_ROLES:
            ids += queue_handover(
                session,
                case=case,
                conference=conference,
                participant=participant,
                event=event,
                now=now,
            )
            continue
        assert participant.agency_id is not None
        ids += queue_to_agency(
            session,
            case=case,
            conference=conference,
            event=event,
            agency_id=participant.agency_id,
            role=Role(participant.role),
            now=now,
            recipient=f"{participant.agency_id}:{participant.role}",
            version=conference.ical_sequence,
        )
    return ids


#: What the intermediary is sent for a meeting event of a participant it reaches (absent: none;
#: reminders and notices to professionals are not handed over).
HANDOVER_EVENTS = {
    "invitation": "handover_request",
    "rescheduled": "handover_request",
    "cancelled": "handover_withdrawn",
    "removed": "handover_withdrawn",
}


def queue_handover(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    participant: Participant,
    event: str,
    now: datetime,
) -> list[int]:
    """Queue to the intermediary what it is to hand to the client or a family member: for whom
    (by role and relation, never a name) travels in the row's detail."""
    kind = HANDOVER_EVENTS.get(event)
    if kind is None:
        return []
    if conference.conference_type == ConferenceType.security and event != "removed":
        return []  # a security conference never includes them: nothing is handed over
    assert participant.intermediary_agency_id is not None
    return queue_to_agency(
        session,
        case=case,
        conference=conference,
        event=kind,
        key_event=None if event == "invitation" else event,
        agency_id=participant.intermediary_agency_id,
        role=Role(participant.role),
        now=now,
        recipient=handover_recipient(
            participant.intermediary_agency_id,
            participant.role,
            participant.relation,
            participant.id or 0,
        ),
        version=conference.ical_sequence,
        detail={"for": handover_for(participant.role, participant.relation)},
    )


def record_handover(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    role: Role,
    actor_id: int,
    now: datetime,
    relation: str | None = None,
) -> list[int]:
    """The intermediary handed the invitation to the client or family (a family member by
    relation, if given): record it on the request."""
    still = session.exec(
        select(Participant).where(
            Participant.conference_id == conference.id, Participant.role == role
        )
    ).first()
    if still is None:
        raise Refusal.of("handed_to", f"this conference no longer includes the {role}")
    rows = list(
        session.exec(
            select(Notification).where(
                Notification.conference_id == conference.id,
                Notification.event == "handover_request",
                Notification.recipient_role == role,
            )
        )
    )
    if relation is not None:
        wanted = handover_for(role, relation)
        rows = [r for r in rows if r.detail.get("for") == wanted]
        if not rows:
            raise Refusal.of(
                "relation",
                f"no invitation for a family member ({relation}) waits to be handed over",
            )
    if not rows:
        raise Refusal.of("role", f"no invitation for the {role} waits to be handed over")
    if not any(r.status in (NotificationStatus.sent, NotificationStatus.handed_over) for r in rows):
        raise Refusal.of("role", "the intermediary has not been sent the invitation yet")
    for row in rows:
        row.status = NotificationStatus.handed_over
        session.add(row)
    audit(
        session, action=f"invitation.handed_over.{role}", case_id=case.id, actor_id=actor_id, at=now
    )
    session.flush()
    return [saved_id(r) for r in rows]
