"""The release phase: the decision takes effect, minutes go to each audience, actions are assigned."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from models.conference import audience, participants
from models.notifications import notification_key, queue
from models.tables import ActionItem, Agency, Case, Conference, InformationItem
from models.vocabulary import PROFESSIONAL_ROLES, Classification, ConferenceType, Role


@dataclass(frozen=True)
class Minutes:
    """Which information items one audience may receive."""

    recipient: str
    role: Role
    classifications: frozenset[Classification]
    information_ids: tuple[int, ...]


def minutes_per_audience(session: Session, *, conference: Conference) -> list[Minutes]:
    items = list(
        session.exec(select(InformationItem).where(InformationItem.conference_id == conference.id))
    )
    result = []
    for p in participants(session, conference_id=conference.id):  # type: ignore[arg-type]
        agency = session.get(Agency, p.agency_id or p.intermediary_agency_id)
        assert agency is not None
        allowed = audience(
            role=Role(p.role),
            clearance=Classification(agency.clearance),
            conference_type=ConferenceType(conference.conference_type),
        )
        result.append(
            Minutes(
                recipient=agency.code
                if p.role in PROFESSIONAL_ROLES
                else f"{agency.code}:{p.role}",
                role=Role(p.role),
                classifications=frozenset(allowed),
                information_ids=tuple(i.id for i in items if i.classification in allowed),  # type: ignore[misc]
            )
        )
    return result


def release(session: Session, *, case: Case, conference: Conference, now: datetime) -> list[int]:
    """Queue the minutes for each participant and an assignment notice per action; mark released."""
    ids = []
    for p in participants(session, conference_id=conference.id):  # type: ignore[arg-type]
        professional = p.role in PROFESSIONAL_ROLES
        recipient_id = p.agency_id if professional else p.intermediary_agency_id
        agency = session.get(Agency, recipient_id)
        assert agency is not None
        channel = "agency" if professional else "by_hand"
        ids.append(
            queue(
                session,
                key=notification_key(
                    reference=case.reference,
                    cycle=conference.cycle,
                    event="minutes",
                    recipient=f"{agency.code}:{p.role}",
                    channel=channel,
                ),
                case_id=case.id,  # type: ignore[arg-type]
                conference_id=conference.id,
                event="minutes",
                recipient_agency_id=recipient_id,
                recipient_role=Role(p.role),
                channel=channel,
                now=now,
            ).id
        )
    for action in session.exec(select(ActionItem).where(ActionItem.conference_id == conference.id)):
        owner = session.get(Agency, action.owner_agency_id)
        assert owner is not None
        ids.append(
            queue(
                session,
                key=notification_key(
                    reference=case.reference,
                    cycle=conference.cycle,
                    event=f"action_assigned:{action.id}",
                    recipient=owner.code,
                    channel="agency",
                ),
                case_id=case.id,  # type: ignore[arg-type]
                conference_id=conference.id,
                event="action_assigned",
                recipient_agency_id=owner.id,
                recipient_role=Role.core,
                channel="agency",
                now=now,
            ).id
        )
    conference.released_at = now
    session.add(conference)
    session.flush()
    return ids  # type: ignore[return-value]
