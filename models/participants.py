"""Participants of a conference: the confirmed selection, client and family, their invitations."""

from datetime import datetime

from sqlmodel import Session, select

from models.errors import Refusal
from models.notifications import notification_key, queue
from models.stakeholders import Proposal
from models.tables import Agency, Case, Conference, Participant
from models.vocabulary import PROFESSIONAL_ROLES, Phase, Role


def record_participants(
    session: Session,
    *,
    conference: Conference,
    proposals: list[Proposal],
    client_and_family: bool,
    family_involved: bool,
    intermediary_code: str | None,
) -> list[int]:
    """Store who takes part and why; client and family are reached through an intermediary."""
    agencies = {a.code: a for a in session.exec(select(Agency))}
    ids: list[int] = []

    def add(participant: Participant) -> None:
        session.add(participant)
        session.flush()
        ids.append(participant.id)  # type: ignore[arg-type]

    for proposal in proposals:
        add(
            Participant(
                conference_id=conference.id,  # type: ignore[arg-type]
                agency_id=agencies[proposal.agency_code].id,
                role=proposal.role,
                rule=proposal.rule[:300],
                override_reason=proposal.override_reason,
            )
        )
    if client_and_family:
        if intermediary_code not in agencies or not agencies[intermediary_code].active:
            raise Refusal.of(
                "intermediary",
                "name an active agency of the directory (prison staff, the CSO) to hand the "
                "invitation to the client and family",
            )
        intermediary = agencies[intermediary_code]
        roles = [Role.client] + ([Role.family] if family_involved else [])
        for role in roles:
            add(
                Participant(
                    conference_id=conference.id,  # type: ignore[arg-type]
                    role=role,
                    rule=f"{role} of a social-network conference, invited through "
                    f"{intermediary.code}",
                    intermediary_agency_id=intermediary.id,
                )
            )
    conference.phase = Phase.information
    session.add(conference)
    session.flush()
    return ids


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
