"""Invitations: one per participant and channel, queued in the outbox once per key.

Client and family have no channel of their own: their invitation goes to the intermediary
agency as a hand-over request, and the coordinator records the hand-over.
"""

from datetime import datetime

from sqlmodel import Session, select

from models.audit import audit
from models.errors import Refusal
from models.notifications import queue_to_agency
from models.tables import Case, Conference, Notification, Participant
from models.vocabulary import PROFESSIONAL_ROLES, NotificationStatus, Role


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
        professional = participant.role in PROFESSIONAL_ROLES
        recipient_id = participant.agency_id if professional else participant.intermediary_agency_id
        assert recipient_id is not None
        if not professional and event not in ("invitation", "rescheduled", "cancelled"):
            continue  # the intermediary hands over meeting changes only; the rest is for agencies
        kind = event if professional else "handover_request" if event == "invitation" else event
        ids += queue_to_agency(
            session,
            case=case,
            conference=conference,
            event=kind,
            agency_id=recipient_id,
            role=Role(participant.role),
            now=now,
            recipient=f"{recipient_id}:{participant.role}",
            version=conference.ical_sequence,
        )
    return ids


def record_handover(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    role: Role,
    actor_id: int,
    now: datetime,
) -> list[int]:
    """The intermediary handed the invitation to the client or family: record it on the request."""
    rows = list(
        session.exec(
            select(Notification).where(
                Notification.conference_id == conference.id,
                Notification.event == "handover_request",
                Notification.recipient_role == role,
            )
        )
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
    return [r.id for r in rows]  # type: ignore[misc]
