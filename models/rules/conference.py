"""A conference cycle's phases as plain rules: preparation, information, family-only, decision."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from models.answers import ANSWER_CONFIG
from models.config.profile import RANK, Profile
from models.errors import Problem, Refusal
from models.record.database import saved_id
from models.record.tables import (
    ActionItem,
    Agency,
    Case,
    Conference,
    InformationItem,
    Participant,
    PlanItem,
)
from models.vocabulary import (
    PROFESSIONAL_ROLES,
    ActionStatus,
    Classification,
    ConferenceKind,
    ConferenceType,
    Phase,
    PlanOutcome,
    Role,
    phase_named,
)


class InformationEntry(BaseModel):
    """One agency's contribution to the information phase."""

    model_config = ANSWER_CONFIG

    agency: str = Field(
        description="Directory code of the contributing agency (one of this conference's).",
        min_length=1,
        max_length=64,
    )
    classification: Classification = Field(
        description="restricted: security only, give a pointer, never the content; "
        "professional: the professionals of this conference; shared: also client and family."
    )
    summary: str | None = Field(
        default=None,
        max_length=1000,
        description="A short summary (professional or shared items). No names. Empty for restricted.",
    )
    pointer: str | None = Field(
        default=None,
        max_length=300,
        description="Restricted items only: where the information is held (agency and file or "
        "system), never the content itself.",
    )


class PlanDecisionEntry(BaseModel):
    """The professionals' decision on one item of the client's and family's plan."""

    model_config = ANSWER_CONFIG

    item: int = Field(ge=1, le=100, description="Number of the plan item, as listed above.")
    outcome: PlanOutcome = Field(description="accepted, amended (give the amendment) or rejected.")
    classification: Classification | None = Field(
        default=None,
        description="Who may read the item in the minutes: shared (also client and family) or "
        "professional (the professionals only). Empty keeps it as listed above (the client's "
        "and family's own items are shared).",
    )
    amendment: str | None = Field(
        default=None, max_length=1000, description="The amended wording, when amended."
    )
    reason: str = Field(min_length=3, max_length=1000, description="Why (required for each item).")


class ActionOwnerRole(StrEnum):
    """An action owned by the client or the family: their intermediary reaches them."""

    client = "client"
    family = "family"


class ActionEntry(BaseModel):
    """An action agreed at the conference."""

    model_config = ANSWER_CONFIG

    owner_agency: str | None = Field(
        default=None,
        description="Directory code of the agency that owns the action (one of this "
        "conference's). Empty when the client or the family owns it (owner_role).",
        max_length=64,
    )
    owner_role: ActionOwnerRole | None = Field(
        default=None,
        description="Only for an action the client or the family owns (e.g. a family support "
        "programme): their intermediary in this conference receives the notices and hands "
        "them over. Leave owner_agency empty (or give the intermediary's code).",
    )
    classification: Classification = Field(
        default=Classification.professional,
        description="Who may read the action in the minutes: professional (the professionals "
        "only) or shared (also client and family). An action of the client or family must be "
        "shared.",
    )
    description: str = Field(
        min_length=3, max_length=500, description="What is to be done. No names."
    )
    due_on: date = Field(description="Due date (after today).")


@dataclass(frozen=True)
class ConferenceView:
    """What a flow may know of a conference: ids and vocabulary."""

    id: int
    cycle: int
    kind: ConferenceKind
    conference_type: ConferenceType
    phase: str  # a Phase, or an installation's own phase


def view(conference: Conference) -> ConferenceView:
    assert conference.id is not None
    return ConferenceView(
        id=conference.id,
        cycle=conference.cycle,
        kind=ConferenceKind(conference.kind),
        conference_type=ConferenceType(conference.conference_type),
        phase=phase_named(conference.phase),
    )


def aware_start(starts_at: datetime, time_zone: str) -> datetime:
    """A start without an offset read in `time_zone`; refused unless that is an IANA time zone."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Refusal.of("time_zone", "not an IANA time zone such as Europe/Vienna") from error
    return starts_at.replace(tzinfo=zone) if starts_at.tzinfo is None else starts_at


def open_conference(
    session: Session,
    *,
    case: Case,
    kind: ConferenceKind,
    conference_type: ConferenceType,
    starts_at: datetime,
    time_zone: str,
    location: str,
    now: datetime,
) -> Conference:
    """Create (or, for the same cycle, reschedule before invitations) the cycle's conference."""
    if starts_at <= now:
        raise Refusal.of("starts_at", "the conference must start in the future")
    if starts_at > now + timedelta(days=366):
        raise Refusal.of("starts_at", "the conference must start within a year")
    existing = session.exec(
        select(Conference).where(Conference.case_id == case.id, Conference.cycle == case.cycle)
    ).first()
    conference = existing or Conference(
        case_id=saved_id(case),
        cycle=case.cycle,
        kind=kind,
        conference_type=conference_type,
        ical_uid=f"{uuid.uuid4()}@caseconf",
        created_at=now,
    )
    conference.conference_type = conference_type
    conference.starts_at = starts_at
    conference.time_zone = time_zone
    conference.location = location
    conference.phase = Phase.stakeholders
    case.conference_type = conference_type
    session.add(conference)
    session.add(case)
    session.flush()
    return conference


def reschedule_conference(
    session: Session,
    *,
    conference: Conference,
    starts_at: datetime,
    time_zone: str,
    location: str | None,
    now: datetime,
) -> Conference:
    """Move an upcoming conference: a new time (and place); calendars get a higher SEQUENCE."""
    if conference.released_at is not None or (
        conference.starts_at is not None and conference.starts_at <= now
    ):
        raise Refusal.of("case_reference", "this conference has already taken place")
    if starts_at <= now:
        raise Refusal.of("starts_at", "the conference must start in the future")
    conference.starts_at = starts_at
    conference.time_zone = time_zone
    if location:
        conference.location = location
    conference.ical_sequence += 1
    session.add(conference)
    session.flush()
    return conference


def cancel_conference(session: Session, *, conference: Conference, now: datetime) -> bool:
    """Cancel an upcoming conference (its case closed); True if there was one to cancel."""
    if conference.released_at is not None or conference.starts_at is None:
        return False
    if conference.starts_at <= now:
        return False
    conference.ical_sequence += 1
    conference.phase = Phase.closed
    session.add(conference)
    session.flush()
    return True


def continue_as_security(session: Session, *, case: Case, conference: Conference) -> None:
    """No consent: the conference goes on as a security conference, without the family-only phase."""
    conference.conference_type = ConferenceType.security
    case.conference_type = ConferenceType.security
    if conference.phase == Phase.family_only:
        conference.phase = Phase.decision
        case.phase = Phase.decision
    session.add(conference)
    session.add(case)
    session.flush()


def get_conference(session: Session, conference_id: int) -> Conference:
    conference = session.get(Conference, conference_id)
    if conference is None:
        raise LookupError(f"conference id {conference_id} does not exist")
    return conference


def participants(session: Session, *, conference_id: int) -> list[Participant]:
    query = select(Participant).where(Participant.conference_id == conference_id)
    return list(session.exec(query.order_by(col(Participant.id))))


def professional_agencies(
    session: Session, *, conference_id: int, phase: Phase | None = None
) -> dict[str, Agency]:
    """Agency code to agency, for the professionals taking part in the conference (in `phase`,
    if given: those whose `Participant.phases` include it, or who attend every phase)."""
    rows = session.exec(
        select(Agency, Participant)
        .join(Participant, col(Participant.agency_id) == col(Agency.id))
        .where(Participant.conference_id == conference_id)
    ).all()
    return {
        a.code: a
        for a, p in rows
        if p.role in PROFESSIONAL_ROLES
        and (phase is None or p.phases is None or str(phase) in p.phases)
    }


def _require_phase(conference: Conference, phase: Phase) -> None:
    if conference.phase != phase:
        raise Refusal.of(
            "phase",
            f"this conference is in its {conference.phase} phase, not {phase}",
        )


def record_information(
    session: Session,
    *,
    conference: Conference,
    entries: list[InformationEntry],
    next_phase: str,
    now: datetime,
) -> list[int]:
    """Store the information phase; restricted items only as pointers, only in security conferences."""
    _require_phase(conference, Phase.information)
    agencies = professional_agencies(
        session,
        conference_id=saved_id(conference),
        phase=Phase.information,
    )
    problems: list[Problem] = []
    for i, entry in enumerate(entries):
        field = f"contributions[{i}]"
        if entry.agency not in agencies:
            problems.append(
                Problem(
                    f"{field}.agency",
                    "not a professional attending this conference's information phase",
                )
            )
        if entry.classification == Classification.restricted:
            if conference.conference_type != ConferenceType.security:
                problems.append(
                    Problem(
                        f"{field}.classification",
                        "restricted information belongs only in security conferences",
                    )
                )
            cleared = agencies.get(entry.agency)
            if cleared is not None and cleared.clearance != Classification.restricted:
                problems.append(
                    Problem(
                        f"{field}.classification",
                        "this agency is not cleared for restricted information",
                    )
                )
            if not (entry.pointer or "").strip():
                problems.append(Problem(f"{field}.pointer", "required for restricted items"))
            if entry.summary:
                problems.append(
                    Problem(
                        f"{field}.summary",
                        "must be empty: caseconf stores a pointer to restricted content, never it",
                    )
                )
        else:
            if not (entry.summary or "").strip():
                problems.append(
                    Problem(f"{field}.summary", "required unless the item is restricted")
                )
            if entry.pointer:
                problems.append(
                    Problem(f"{field}.pointer", "only restricted items carry a pointer")
                )
    if problems:
        raise Refusal(*problems)
    ids: list[int] = []
    for entry in entries:
        item = InformationItem(
            conference_id=saved_id(conference),
            agency_id=saved_id(agencies[entry.agency]),
            classification=entry.classification,
            summary=(entry.summary or "").strip() or None,
            pointer=(entry.pointer or "").strip() or None,
            recorded_at=now,
        )
        session.add(item)
        session.flush()
        ids.append(saved_id(item))
    conference.phase = next_phase
    session.add(conference)
    session.flush()
    return ids


def record_family_plan(
    session: Session, *, conference: Conference, items: list[str], next_phase: str = Phase.decision
) -> list[int]:
    """Store the plan the client and family drafted without professionals present; the
    conference moves to `next_phase` (the decision, unless a profile puts a phase between)."""
    _require_phase(conference, Phase.family_only)
    cleaned = [item.strip() for item in items]
    problems = [
        Problem(f"plan_items[{i}]", "must not be empty")
        for i, text in enumerate(cleaned)
        if not text
    ]
    if not cleaned:
        problems.append(Problem("plan_items", "the family's plan needs at least one item"))
    if problems:
        raise Refusal(*problems)
    ids = []
    for number, text in enumerate(cleaned, start=1):
        plan_item = PlanItem(
            conference_id=saved_id(conference),
            number=number,
            drafted_by=Role.family,
            text=text,
            # Their own plan: they may read it in their minutes.
            classification=Classification.shared,
        )
        session.add(plan_item)
        session.flush()
        ids.append(saved_id(plan_item))
    conference.phase = next_phase
    session.add(conference)
    session.flush()
    return ids


def plan_items(session: Session, *, conference_id: int) -> list[PlanItem]:
    query = select(PlanItem).where(PlanItem.conference_id == conference_id)
    return list(session.exec(query.order_by(col(PlanItem.number))))


def record_decision(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    plan_decisions: list[PlanDecisionEntry],
    decisions: list[str],
    actions: list[ActionEntry],
    next_review_on: date | None,
    today: date,
    closes: bool = False,
    shared_decisions: list[str] | None = None,
) -> list[int]:
    """Decide the plan item by item, record further decisions and actions; all or nothing.

    Every item has an audience: `decisions` are professional, `shared_decisions` may also reach
    the client and family; a plan decision may set its item's classification. An action owned
    by the client or the family (`owner_role`) is owned on record by their intermediary.
    The conference either sets the date of the next one or, with `closes`, ends the case (the
    date is then not used).
    """
    _require_phase(conference, Phase.decision)
    drafted = {p.number: p for p in plan_items(session, conference_id=saved_id(conference))}
    problems = _plan_problems(plan_decisions, drafted)
    shared_decisions = list(shared_decisions or [])
    for name, texts in (("decisions", decisions), ("shared_decisions", shared_decisions)):
        for i, text in enumerate(texts):
            if not text.strip():
                problems.append(Problem(f"{name}[{i}]", "must not be empty"))
    owners = _action_owners(
        session, conference=conference, actions=actions, today=today, problems=problems
    )
    # Closing wins over the pre-filled date: a case that closes has no next conference.
    if not closes and next_review_on is None:
        problems.append(
            Problem("next_review_on", "required, unless the case closes (close_reason)")
        )
    elif not closes and next_review_on is not None and next_review_on <= today:
        problems.append(Problem("next_review_on", "must be after today"))
    if not drafted and not decisions and not shared_decisions and not actions:
        problems.append(Problem("decisions", "record at least one decision or action"))
    if problems:
        raise Refusal(*problems)

    for entry in plan_decisions:
        item = drafted[entry.item]
        item.outcome = entry.outcome
        item.amendment = (entry.amendment or "").strip() or None
        item.reason = entry.reason.strip()
        if entry.classification is not None:
            item.classification = entry.classification
        session.add(item)
    next_number = max(drafted, default=0) + 1
    further = [(t, Classification.professional) for t in decisions] + [
        (t, Classification.shared) for t in shared_decisions
    ]
    for offset, (text, level) in enumerate(further):
        session.add(
            PlanItem(
                conference_id=saved_id(conference),
                number=next_number + offset,
                drafted_by=Role.lead,
                text=text.strip(),
                outcome=PlanOutcome.accepted,
                classification=level,
            )
        )
    action_ids = _store_actions(
        session, case=case, conference=conference, actions=actions, owners=owners
    )
    conference.phase = Phase.release
    session.add(conference)
    session.flush()
    return action_ids


def _plan_problems(
    plan_decisions: list[PlanDecisionEntry], drafted: dict[int, PlanItem]
) -> list[Problem]:
    """What is wrong with the decisions on the drafted plan: each item decided once, and right."""
    problems: list[Problem] = []
    seen: set[int] = set()
    for i, entry in enumerate(plan_decisions):
        field = f"plan_decisions[{i}]"
        if entry.item not in drafted:
            problems.append(Problem(f"{field}.item", "no plan item with this number"))
        elif entry.item in seen:
            problems.append(Problem(f"{field}.item", "this plan item is decided twice"))
        seen.add(entry.item)
        if entry.outcome == PlanOutcome.amended and not (entry.amendment or "").strip():
            problems.append(Problem(f"{field}.amendment", "required when the item is amended"))
        if entry.outcome != PlanOutcome.amended and entry.amendment:
            problems.append(Problem(f"{field}.amendment", "only amended items carry an amendment"))
        if entry.classification == Classification.restricted:
            problems.append(
                Problem(f"{field}.classification", "a plan item is shared or professional")
            )
    missing = sorted(set(drafted) - seen)
    if missing:
        problems.append(
            Problem("plan_decisions", f"every plan item needs a decision; missing: {missing}")
        )
    return problems


def _action_owners(
    session: Session,
    *,
    conference: Conference,
    actions: list[ActionEntry],
    today: date,
    problems: list[Problem],
) -> list[int]:
    """Each action's owning agency on record (0 where there is none); what is wrong with an
    action goes to `problems`."""
    agencies = professional_agencies(session, conference_id=saved_id(conference))
    owners: list[int] = []
    for i, action in enumerate(actions):
        owner, problem = action_owner(
            session, conference=conference, action=action, agencies=agencies
        )
        if problem is not None:
            problems.append(Problem(f"actions[{i}].{problem[0]}", problem[1]))
        owners.append(owner or 0)
        if action.classification == Classification.restricted:
            problems.append(
                Problem(
                    f"actions[{i}].classification",
                    "an action is shared or professional (restricted content is never stored)",
                )
            )
        elif action.owner_role is not None and action.classification != Classification.shared:
            problems.append(
                Problem(
                    f"actions[{i}].classification",
                    f"must be shared: the {action.owner_role} owns this action and reads it",
                )
            )
        if action.due_on <= today:
            problems.append(Problem(f"actions[{i}].due_on", "must be after today"))
    return owners


def _store_actions(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    actions: list[ActionEntry],
    owners: list[int],
) -> list[int]:
    """Store the decided actions, each with its owner; returns their ids."""
    action_ids = []
    for action, owner_id in zip(actions, owners, strict=True):
        row = ActionItem(
            case_id=saved_id(case),
            conference_id=saved_id(conference),
            owner_agency_id=owner_id,
            owner_role=Role(action.owner_role) if action.owner_role else None,
            classification=action.classification,
            description=action.description.strip(),
            due_on=action.due_on,
            status=ActionStatus.open,
        )
        session.add(row)
        session.flush()
        action_ids.append(saved_id(row))
    return action_ids


def action_owner(
    session: Session, *, conference: Conference, action: ActionEntry, agencies: dict[str, Agency]
) -> tuple[int | None, tuple[str, str] | None]:
    """The agency that owns `action` on record (for the client or family: their intermediary),
    or the field at fault and why."""
    if action.owner_role is None:
        if not action.owner_agency:
            return None, ("owner_agency", "required (or owner_role for the client or family)")
        if action.owner_agency not in agencies:
            return None, ("owner_agency", "not a professional in this conference")
        return agencies[action.owner_agency].id, None
    reached = [
        p
        for p in participants(session, conference_id=saved_id(conference))
        if p.role == action.owner_role and p.intermediary_agency_id is not None
    ]
    if not reached:
        return None, (
            "owner_role",
            f"the {action.owner_role} does not take part in this conference through an "
            "intermediary, so nobody could hand the action over",
        )
    intermediary = session.get(Agency, reached[0].intermediary_agency_id)
    assert intermediary is not None
    if action.owner_agency and action.owner_agency != intermediary.code:
        return None, (
            "owner_agency",
            f"leave it empty: the {action.owner_role}'s action goes to their intermediary, "
            f"{intermediary.code}",
        )
    return intermediary.id, None


def open_actions(session: Session, *, case_id: int) -> list[ActionItem]:
    query = select(ActionItem).where(
        ActionItem.case_id == case_id, ActionItem.status == ActionStatus.open
    )
    return list(session.exec(query.order_by(col(ActionItem.due_on), col(ActionItem.id))))


def audience(
    *,
    role: Role,
    conference_type: ConferenceType,
    profile: Profile,
    kinds: Iterable[str],
    agency_clearance: Classification,
    share_with_held: bool = True,
) -> set[Classification]:
    """Which classifications a participant may receive in minutes and messages: the one place
    that decides. Client and family: `shared` only. A professional: up to the lower of the
    profile's clearance for its kinds in this conference type and the directory's clearance of
    its agency; `restricted` never outside a security conference; `shared` only, when the
    profile makes its kind need the client's `share_with:<agency>` consent and
    `share_with_held` says it is not in force. The channel's clearance is applied on top when a
    message is composed (models/messaging/delivery.py)."""
    if role not in PROFESSIONAL_ROLES:
        return {Classification.shared}
    if not share_with_held and needs_share_with(profile, conference_type, kinds):
        return {Classification.shared}
    ceiling = min(
        profile.clearance_for(conference_type, kinds), agency_clearance, key=RANK.__getitem__
    )
    allowed = {c for c in Classification if RANK[c] <= RANK[ceiling]}
    if conference_type != ConferenceType.security:
        allowed.discard(Classification.restricted)
    return allowed


def needs_share_with(
    profile: Profile, conference_type: ConferenceType, kinds: Iterable[str]
) -> bool:
    """Does an agency of these kinds need the client's `share_with:<agency>` consent to receive
    more than `shared` items in this conference type (the profile's share_with_consent_kinds)?"""
    rules = profile.conference_types.get(conference_type)
    required = {str(k) for k in getattr(rules, "share_with_consent_kinds", None) or []}
    return bool(required & {str(k) for k in kinds})


def attended_phases(
    participant: Participant, profile: Profile, conference_type: ConferenceType
) -> set[str]:
    """The phases a participant attends (`Participant.phases`; none recorded: every phase of
    the type)."""
    phases = (
        profile.conference_types[conference_type].phases
        if conference_type in profile.conference_types
        else []
    )
    if participant.phases is None:
        return set(phases)
    return {phase_named(p) for p in participant.phases}
