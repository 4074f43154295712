"""Invitations: one per participant and channel, queued in the outbox once per key."""

from datetime import datetime

from sqlmodel import Session, select

from models.notifications import notification_key, queue
from models.tables import Agency, Case, Conference, Participant
from models.vocabulary import PROFESSIONAL_ROLES


def queue_invitations(
    session: Session, *, case: Case, conference: Conference, now: datetime
) -> list[int]:
    """One invitation per participant and channel; client and family by hand, via the intermediary."""
    ids = []
    for participant in session.exec(
        select(Participant).where(Participant.conference_id == conference.id)
    ):
        if participant.role in PROFESSIONAL_ROLES:
            recipient_id, channel = participant.agency_id, "agency"
        else:
            recipient_id, channel = participant.intermediary_agency_id, "by_hand"
        agency = session.get(Agency, recipient_id)
        assert agency is not None
        key = notification_key(
            reference=case.reference,
            cycle=conference.cycle,
            event="invitation",
            recipient=f"{agency.code}:{participant.role}",
            channel=channel,
            version=conference.ical_sequence,
        )
        row = queue(
            session,
            key=key,
            case_id=case.id,  # type: ignore[arg-type]
            conference_id=conference.id,
            event="invitation",
            recipient_agency_id=recipient_id,
            recipient_role=participant.role,
            channel=channel,
            now=now,
        )
        ids.append(row.id)
    return ids  # type: ignore[return-value]
