"""The release phase: the decision takes effect, minutes go to each audience, actions are assigned."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from models.conference import audience, participants
from models.notifications import queue_to_agency
from models.profile import load_profile
from models.tables import ActionItem, Agency, Case, Conference, InformationItem, Participant
from models.vocabulary import PROFESSIONAL_ROLES, Classification, ConferenceType, Role


@dataclass(frozen=True)
class Minutes:
    """Which information items one audience may receive."""

    recipient: str
    role: Role
    classifications: frozenset[Classification]
    information_ids: tuple[int, ...]


def minutes_per_audience(session: Session, *, conference: Conference) -> list[Minutes]:
    case = session.get(Case, conference.case_id)
    assert case is not None
    profile = load_profile(case.profile)
    items = list(
        session.exec(select(InformationItem).where(InformationItem.conference_id == conference.id))
    )
    result = []
    for p in participants(session, conference_id=conference.id):  # type: ignore[arg-type]
        agency = session.get(Agency, p.agency_id or p.intermediary_agency_id)
        assert agency is not None
        allowed = audience(
            role=Role(p.role),
            conference_type=ConferenceType(conference.conference_type),
            profile=profile,
            kinds=agency.kinds,
            agency_clearance=Classification(agency.clearance),
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
    ids: list[int] = []
    for p in participants(session, conference_id=conference.id):  # type: ignore[arg-type]
        recipient_id = p.agency_id if p.role in PROFESSIONAL_ROLES else p.intermediary_agency_id
        assert recipient_id is not None
        ids += queue_to_agency(
            session,
            case=case,
            conference=conference,
            event="minutes",
            agency_id=recipient_id,
            role=Role(p.role),
            now=now,
            recipient=f"{recipient_id}:{p.role}",
        )
    for action in session.exec(select(ActionItem).where(ActionItem.conference_id == conference.id)):
        ids.extend(
            queue_action_notice(session, case=case, action=action, event="action_assigned", now=now)
        )
    conference.released_at = now
    session.add(conference)
    session.flush()
    return ids  # type: ignore[return-value]


def queue_action_notice(
    session: Session,
    *,
    case: Case,
    action: ActionItem,
    event: str,
    now: datetime,
    to_lead: bool = False,
    due_on: object = None,
) -> list[int]:
    """Tell an action's owner (or, for an escalation, the conference's lead) on every channel."""
    recipient_id = action.owner_agency_id
    role = Role.core
    if to_lead:
        lead = session.exec(
            select(Participant).where(
                Participant.conference_id == action.conference_id, Participant.role == Role.lead
            )
        ).first()
        if lead is None or lead.agency_id is None:
            return []
        recipient_id, role = lead.agency_id, Role.lead
    conference = session.get(Conference, action.conference_id)
    assert conference is not None
    return queue_to_agency(
        session,
        case=case,
        conference=conference,
        event=event,
        agency_id=recipient_id,
        role=role,
        now=now,
        key_event=f"{event}:{action.id}" + (f":{due_on}" if due_on else ""),
        detail={"action_id": action.id},
    )
