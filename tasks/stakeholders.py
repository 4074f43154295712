"""Stakeholder selection: propose by the profile's rules, explained; confirm with the coordinator."""

from dataclasses import dataclass
from datetime import datetime

from prefect import task
from prefect.artifacts import create_markdown_artifact
from sqlmodel import Session, col, select

from models.config.profile import Profile, load_profile
from models.record.audit import audit
from models.record.database import session_scope
from models.record.tables import Agency, Case, Conference, Notification, Representative
from models.reporting.continuity import continuity, continuity_table
from models.rules import cases, choices, consent
from models.rules.conference import get_conference
from models.rules.fallback import INVITED_EVENTS
from models.rules.participants import (
    last_representatives,
    named_representatives,
    proposed_representatives,
    record_participants,
    substitutions,
)
from models.rules.stages import case_today
from models.rules.stakeholders import (
    AgencyView,
    Proposal,
    Selection,
    apply_changes,
    coordinator_code,
    core_cap_warning,
    propose_participants,
)
from models.steps.forms import Choice, Stakeholders
from models.vocabulary import AgencyKind, ConferenceType, ConsentScope, Need, Stage
from tasks.policies import CHECK, DATABASE_RETRIES, StepOutcome, apply_once, now


def _selection(
    session: Session, case: Case, conference: Conference, profile: Profile | None = None
) -> tuple[Profile, list[AgencyView], Selection]:
    profile = profile if profile is not None else load_profile(case.profile)
    rows = list(session.exec(select(Agency)))
    agencies = [AgencyView.of(a) for a in rows]
    lead = next((a.code for a in rows if a.id == case.lead_agency_id), None)  # after a transfer
    selection = propose_participants(
        profile=profile,
        agencies=agencies,
        stage=Stage(case.stage),
        conference_type=ConferenceType(conference.conference_type),
        needs=[Need(n) for n in case.needs],
        area=case.area,
        preferred_lead=lead,
    )
    return profile, agencies, selection


def default_intermediary(case: Case, selection: Selection, agencies: list[AgencyView]) -> str:
    """Prison staff while the person is held (a proposed prison first), else the coordinator."""
    if case.stage in (Stage.custody, Stage.pre_release, Stage.pre_trial):
        proposed = {p.agency_code for p in selection.proposals}
        prisons = [a for a in agencies if a.active and AgencyKind.prison in a.kinds]
        prisons.sort(key=lambda a: a.code not in proposed)
        if prisons:
            return prisons[0].code
    return coordinator_code(selection.proposals) or selection.lead.agency_code


def describe_proposal(
    case_id: int, conference_id: int, profile: Profile | None = None
) -> tuple[str, str, list[dict[str, str | None]]]:
    """The proposal as a Markdown table with the rule for each, the default intermediary, and
    who represents each agency (last time's representative, by code, else none)."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        conference = get_conference(session, conference_id)
        profile, agencies, selection = _selection(session, case, conference, profile)
        rows = ["| agency | role | why |", "|---|---|---|"]
        for p in selection.proposals:
            rows.append(f"| `{p.agency_code}` | {p.role} | {p.rule} |")
        text = "\n".join(rows)
        if selection.warnings:
            text += "\n\n" + "\n".join(f"> **Warning:** {w}" for w in selection.warnings)
        attended = profile.rules_for(ConferenceType(conference.conference_type)).client_phases()
        if attended:
            text += (
                "\n\nThe client and family are invited too, by hand, through the intermediary "
                f"agency named below, to these phases: {', '.join(attended)}."
            )
        last = last_representatives(session, case_id=case_id, before_cycle=conference.cycle)
        representatives = proposed_representatives(
            session, agencies=[p.agency_code for p in selection.proposals], last=last
        )
        return text, default_intermediary(case, selection, agencies), representatives


def invitations_queued(case_id: int, conference_id: int) -> bool:
    """Whether the conference's invitations are in the outbox (`invite` done: it queues every
    participant's in one transaction). `models.rules.fallback.was_invited`'s question, asked through
    the case's index: every replay asks it, and the outbox holds every case's messages."""
    with session_scope() as session:
        query = select(Notification.id).where(
            Notification.case_id == case_id,
            Notification.conference_id == conference_id,
            col(Notification.event).in_(INVITED_EVENTS),
        )
        return session.exec(query.limit(1)).first() is not None


def stakeholder_choices(case_id: int, conference_id: int) -> dict[str, list[Choice]]:
    """What the stakeholders form offers now (never cached: the directory may have changed)."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        conference = get_conference(session, conference_id)
        profile, agencies, selection = _selection(session, case, conference)
        return form_choices(session, case, conference, profile, agencies, selection.proposals)


def form_choices(
    session: Session,
    case: Case,
    conference: Conference,
    profile: Profile,
    agencies: list[AgencyView],
    proposals: list[Proposal],
) -> dict[str, list[Choice]]:
    """The stakeholders form's choices for a proposal (also the security fallback's)."""
    names = {a.code: a.name for a in session.exec(select(Agency))}
    offered = choices.changes_accepted(
        proposals,
        profile=profile,
        directory=agencies,
        stage=Stage(case.stage),
        conference_type=ConferenceType(conference.conference_type),
        names=names,
    )
    codes = [code for code, _ in offered["representatives.agency"]]
    offered["representatives.representative"] = choices.representatives(session, codes)
    offered["acting_representative"] = choices.representatives(session)
    return offered


@dataclass(frozen=True)
class ConfirmedList:
    """The coordinator's answer applied to the profile's proposal: who takes part and who
    represents each agency, not yet recorded."""

    profile: Profile
    agencies: list[AgencyView]
    selection: Selection
    proposals: list[Proposal]
    named: dict[str, Representative]
    last: dict[str, str]


def confirmed_list(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    answer: Stakeholders,
    actor_id: int | None,
    at: datetime,
) -> ConfirmedList:
    """Apply the stakeholders form's changes and named representatives to the proposal (all or
    nothing: Refusal); a confirmed core over the profile's cap is audited."""
    profile, agencies, selection = _selection(session, case, conference)
    confirmed = apply_changes(
        selection.proposals,
        add=answer.add,
        remove=answer.remove,
        reason=answer.reason,
        profile=profile,
        agencies=agencies,
        stage=Stage(case.stage),
        conference_type=ConferenceType(conference.conference_type),
    )
    # The cap counts the confirmed core, coordinator additions included.
    over_cap = core_cap_warning(confirmed, profile)
    if over_cap:
        audit(
            session,
            action="participants.core_cap",
            case_id=case.id,
            actor_id=actor_id,
            at=at,
            detail=over_cap,
        )
    assert case.id is not None
    last = last_representatives(session, case_id=case.id, before_cycle=conference.cycle)
    named = named_representatives(
        session,
        entries=[(e.agency, e.representative) for e in answer.representatives],
        participating={p.agency_code for p in confirmed},
        left_out=answer.remove,
    )
    return ConfirmedList(profile, agencies, selection, confirmed, named, last)


def audit_list_changes(
    session: Session, *, case_id: int, actor_id: int | None, at: datetime, answer: Stakeholders
) -> None:
    """Audit the coordinator's additions and removals with their reason, if any."""
    if answer.add or answer.remove:
        audit(
            session,
            action="participants.changed",
            case_id=case_id,
            actor_id=actor_id,
            at=at,
            detail=f"added {sorted(answer.add)}, removed {sorted(answer.remove)}",
            justification=answer.reason,
        )


@task(**DATABASE_RETRIES)
def confirm_participants(
    step_key: str, attempt: int, case_id: int, conference_id: int, answer: Stakeholders
) -> StepOutcome:
    """Record the confirmed participants, with the reason for any change to the proposal."""

    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        case = cases.get_case(session, case_id)
        conference = get_conference(session, conference_id)
        chosen = confirmed_list(
            session, case=case, conference=conference, answer=answer, actor_id=rep.id, at=at
        )
        profile, agencies, selection = chosen.profile, chosen.agencies, chosen.selection
        confirmed, named, last = chosen.proposals, chosen.named, chosen.last
        rules = profile.rules_for(ConferenceType(conference.conference_type))
        family_involved = rules.client_and_family and consent.consent_in_force(
            session,
            case_id=case_id,
            scope=ConsentScope.family_involvement,
            today=case_today(session, case=case, now=at),
        )
        participant_ids = record_participants(
            session,
            conference=conference,
            proposals=confirmed,
            client_and_family=rules.client_and_family,
            client_phases=[str(p) for p in rules.client_phases()],
            family_involved=family_involved,
            intermediary_code=answer.intermediary
            or default_intermediary(case, selection, agencies),
            representatives=named,
            last=last,
            family_relations=[str(r) for r in answer.family_members],
        )
        for agency, (before, after) in sorted(substitutions(named, last).items()):
            audit(
                session,
                action="participants.substitution",
                case_id=case_id,
                actor_id=rep.id,
                at=at,
                detail=f"{agency}: {after} attends instead of {before}",
            )
        audit_list_changes(session, case_id=case_id, actor_id=rep.id, at=at, answer=answer)
        audit(session, action="participants.confirmed", case_id=case_id, actor_id=rep.id, at=at)
        cases.set_phase(session, case=case, phase=rules.phases[0], now=at)
        return {"participant_ids": participant_ids}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def publish_continuity(case_id: int, reference: str) -> None:
    """The personnel-continuity report as an artifact: agency codes and numbers, no person."""
    with session_scope() as session:
        text = continuity_table(reference, continuity(session, case_id))
    create_markdown_artifact(
        key=f"continuity-{reference.lower()}",
        markdown=text,
        description="caseconf: personnel continuity per agency",
    )
