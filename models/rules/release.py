"""The release phase: the decision takes effect, minutes go to each audience, actions are assigned."""

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlmodel import Session, col, select

from models.config.profile import Profile, load_profile
from models.record.database import saved_id
from models.record.outbox import queue_to_agency
from models.record.tables import ActionItem, Agency, Case, Conference, InformationItem, Participant
from models.rules.conference import attended_phases, audience, participants, plan_items
from models.rules.consent import consent_in_force
from models.rules.handover import handover_recipient
from models.vocabulary import (
    PROFESSIONAL_ROLES,
    Classification,
    ConferenceType,
    Phase,
    Role,
    share_with_scope,
)


@dataclass(frozen=True)
class Minutes:
    """What one participant may read in the minutes: the one place that decides, by role,
    phase attendance, profile, directory clearance and the client's share_with consent (the
    channel is applied on top in models/messaging/delivery.py)."""

    recipient: str
    role: Role
    classifications: frozenset[Classification]
    information_ids: tuple[int, ...]
    plan_ids: tuple[int, ...] = ()
    action_ids: tuple[int, ...] = ()


def minutes_for(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    participant: Participant,
    today: date,
    profile: Profile | None = None,
) -> Minutes:
    """The minutes of one participant. Information items if it attends the information phase;
    plan items and actions if it attends the decision (the client's and family's own plan also
    from the family-only phase; an action also to its owner); each only if its classification
    is in the participant's audience."""
    profile = profile or load_profile(case.profile)
    agency = session.get(Agency, participant.agency_id or participant.intermediary_agency_id)
    assert agency is not None
    ctype = ConferenceType(conference.conference_type)
    professional = participant.role in PROFESSIONAL_ROLES
    allowed = audience(
        role=Role(participant.role),
        conference_type=ctype,
        profile=profile,
        kinds=agency.kinds,
        agency_clearance=Classification(agency.clearance),
        share_with_held=not professional
        or consent_in_force(
            session,
            case_id=saved_id(case),
            scope=share_with_scope(agency.code),
            today=today,
        ),
    )
    phases = attended_phases(participant, profile, ctype)
    informed = Phase.information in phases
    decides = Phase.decision in phases
    info = session.exec(
        select(InformationItem)
        .where(InformationItem.conference_id == conference.id)
        .order_by(col(InformationItem.id))
    )
    plan = plan_items(session, conference_id=saved_id(conference))
    acts = session.exec(
        select(ActionItem)
        .where(ActionItem.conference_id == conference.id)
        .order_by(col(ActionItem.id))
    )

    def owns(action: ActionItem) -> bool:
        if action.owner_role is None:
            return professional and action.owner_agency_id == participant.agency_id
        return action.owner_role == participant.role

    return Minutes(
        recipient=agency.code if professional else f"{agency.code}:{participant.role}",
        role=Role(participant.role),
        classifications=frozenset(allowed),
        information_ids=tuple(
            saved_id(i) for i in info if informed and i.classification in allowed
        ),
        plan_ids=tuple(
            saved_id(p)
            for p in plan
            if p.classification in allowed
            and (decides or (Phase.family_only in phases and p.drafted_by == Role.family))
        ),
        action_ids=tuple(
            saved_id(a) for a in acts if a.classification in allowed and (decides or owns(a))
        ),
    )


def minutes_per_audience(
    session: Session, *, conference: Conference, today: date | None = None
) -> list[Minutes]:
    """The minutes of every participant of the conference."""
    case = session.get(Case, conference.case_id)
    assert case is not None
    profile = load_profile(case.profile)
    day = today or datetime.now(UTC).date()
    return [
        minutes_for(
            session, case=case, conference=conference, participant=p, today=day, profile=profile
        )
        for p in participants(session, conference_id=saved_id(conference))
    ]


def release(session: Session, *, case: Case, conference: Conference, now: datetime) -> list[int]:
    """Queue the minutes for each participant and an assignment notice per action; mark released."""
    ids: list[int] = []
    for p in participants(session, conference_id=saved_id(conference)):
        professional = p.role in PROFESSIONAL_ROLES
        if not professional and conference.conference_type == ConferenceType.security:
            continue  # a security conference never includes the client and family
        recipient_id = p.agency_id if professional else p.intermediary_agency_id
        assert recipient_id is not None
        ids += queue_to_agency(
            session,
            case=case,
            conference=conference,
            event="minutes",
            agency_id=recipient_id,
            role=Role(p.role),
            now=now,
            recipient=f"{recipient_id}:{p.role}"
            if professional
            else handover_recipient(recipient_id, p.role, p.relation, p.id or 0),
            detail={"participant_id": p.id},
        )
    for action in session.exec(select(ActionItem).where(ActionItem.conference_id == conference.id)):
        ids.extend(
            queue_action_notice(session, case=case, action=action, event="action_assigned", now=now)
        )
    conference.released_at = now
    session.add(conference)
    session.flush()
    return ids


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
    """Tell an action's owner (or, for an escalation, the conference's lead) on every channel;
    an action of the client or family goes to their intermediary, addressed for hand-over."""
    recipient_id = action.owner_agency_id
    role = Role(action.owner_role) if action.owner_role else Role.core
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
