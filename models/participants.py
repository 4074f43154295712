"""Participants of a conference: the confirmed selection, and client and family."""

from sqlmodel import Session, select

from models.errors import Refusal
from models.stakeholders import Proposal
from models.tables import Agency, Conference, Participant
from models.vocabulary import Phase, Role


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
