"""Stakeholders: who takes part, proposed by the profile's rules and explained; the coordinator
confirms, adds or removes with a reason, and names who represents each agency."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from models.answers import ANSWER_CONFIG, CODE, Choices, acting
from models.config.profile import Profile
from models.record.audit import audit
from models.record.database import saved_id
from models.record.tables import Agency, Case, Conference, Representative
from models.rules import cases, choices, consent
from models.rules.handover import Relation
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
from models.steps.step import Applied, Asked, Step, heading
from models.vocabulary import AgencyKind, ConferenceType, ConsentScope, Need, Phase, Stage


class RepresentativeEntry(BaseModel):
    """Who represents one agency at this conference, by directory code."""

    model_config = ANSWER_CONFIG

    agency: str = Field(
        description="Directory code of a participating agency.",
        min_length=1,
        max_length=64,
        pattern=CODE,
    )
    representative: str | None = Field(
        default=None,
        description="Directory code of the person who attends for it (pre-filled with who "
        "attended last time); empty: the agency decides.",
        max_length=64,
        pattern=CODE,
    )


class Stakeholders(BaseModel):
    model_config = ANSWER_CONFIG

    add: list[str] = Field(
        default_factory=list,
        description="Directory codes of agencies to add to the proposal.",
    )
    remove: list[str] = Field(
        default_factory=list,
        description="Directory codes of proposed agencies to leave out (never the lead).",
    )
    reason: str | None = Field(
        default=None,
        description="Required when you add or remove: why the list differs from the rules.",
        max_length=500,
    )
    intermediary: str | None = Field(
        default=None,
        description="Social-network conferences: directory code of the agency whose staff hand "
        "the invitation to the client and family (prison staff, the CSO).",
        max_length=64,
    )
    family_members: list[Relation] = Field(
        default_factory=list,
        max_length=10,
        description="Social-network conferences with the family involved: one entry per family "
        "member or friend invited, by their relation to the client (never a name); each gets "
        "a hand-over of their own. Empty: one invitation for the family.",
    )
    representatives: list[RepresentativeEntry] = Field(
        default=[],  # not a factory: the flow replaces the default with the pre-filled list
        description="Who attends for each agency. Naming someone other than last time's "
        "representative records a substitution.",
        validate_default=True,  # a pre-filled default arrives as JSON and must become entries
    )
    acting_representative: str = acting()


# --- the proposal: the profile's rules for this case and conference ---------------------------


def selection(
    session: Session, case: Case, conference: Conference, profile: Profile
) -> tuple[list[AgencyView], Selection]:
    """The directory as the rules see it, and whom the profile proposes for this conference."""
    rows = list(session.exec(select(Agency)))
    agencies = [AgencyView.of(a) for a in rows]
    lead = next((a.code for a in rows if a.id == case.lead_agency_id), None)  # after a transfer
    proposed = propose_participants(
        profile=profile,
        agencies=agencies,
        stage=Stage(case.stage),
        conference_type=ConferenceType(conference.conference_type),
        needs=[Need(n) for n in case.needs],
        area=case.area,
        preferred_lead=lead,
    )
    return agencies, proposed


@dataclass(frozen=True)
class Proposed:
    """A stakeholders form's case, conference and profile, and the profile's proposal."""

    case: Case
    conference: Conference
    profile: Profile
    agencies: list[AgencyView]
    selection: Selection


def proposed_for(session: Session, asked: Asked) -> Proposed:
    case, conference = asked.case(session), asked.conference(session)
    profile = asked.profile(session)
    agencies, proposed = selection(session, case, conference, profile)
    return Proposed(case, conference, profile, agencies, proposed)


def default_intermediary(case: Case, proposed: Selection, agencies: list[AgencyView]) -> str:
    """Prison staff while the person is held (a proposed prison first), else the coordinator."""
    if case.stage in (Stage.custody, Stage.pre_release, Stage.pre_trial):
        on_list = {p.agency_code for p in proposed.proposals}
        prisons = [a for a in agencies if a.active and AgencyKind.prison in a.kinds]
        prisons.sort(key=lambda a: a.code not in on_list)
        if prisons:
            return prisons[0].code
    return coordinator_code(proposed.proposals) or proposed.lead.agency_code


def warnings(proposed: Selection) -> str:
    """The selection's warnings as Markdown quotes (empty when there are none)."""
    if not proposed.warnings:
        return ""
    return "\n\n" + "\n".join(f"> **Warning:** {w}" for w in proposed.warnings)


def form_choices(
    session: Session,
    case: Case,
    conference: Conference,
    profile: Profile,
    agencies: list[AgencyView],
    proposals: list[Proposal],
) -> dict[str, list[choices.Choice]]:
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


def describe(session: Session, asked: Asked, now: datetime) -> str:
    """The proposal as a Markdown table with the rule for each agency, and its warnings."""
    found = proposed_for(session, asked)
    proposed, conference, profile = found.selection, found.conference, found.profile
    rows = ["| agency | role | why |", "|---|---|---|"]
    for p in proposed.proposals:
        rows.append(f"| `{p.agency_code}` | {p.role} | {p.rule} |")
    text = "\n".join(rows) + warnings(proposed)
    attended = profile.rules_for(ConferenceType(conference.conference_type)).client_phases()
    if attended:
        text += (
            "\n\nThe client and family are invited too, by hand, through the intermediary "
            f"agency named below, to these phases: {', '.join(attended)}."
        )
    return heading(session, asked, "who takes part") + (
        "Proposed by the profile's rules (the lead and any co-leads, the core group, and "
        "agencies for the "
        "case's needs). Confirm, or add and remove agencies with a reason; no lead can "
        "be removed. Under *representatives*, who attended for an agency last time is "
        "proposed again; name someone else to record a substitute, or leave it empty for "
        "the agency to decide. Invitations go out when you submit.\n\n" + text
    )


def offered(session: Session, asked: Asked, now: datetime) -> Choices:
    """What the form offers now (the directory may have changed while the case waited)."""
    found = proposed_for(session, asked)
    return form_choices(
        session,
        found.case,
        found.conference,
        found.profile,
        found.agencies,
        found.selection.proposals,
    )


def defaults(session: Session, asked: Asked, now: datetime) -> dict[str, Any]:
    """The default intermediary, and who represents each agency (last time's, else none)."""
    found = proposed_for(session, asked)
    last = last_representatives(
        session, case_id=saved_id(found.case), before_cycle=found.conference.cycle
    )
    representatives = proposed_representatives(
        session, agencies=[p.agency_code for p in found.selection.proposals], last=last
    )
    return {
        "intermediary": default_intermediary(found.case, found.selection, found.agencies),
        "representatives": representatives,
    }


# --- the answer applied ----------------------------------------------------------------------


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
    found: Proposed,
    answer: Stakeholders,
    actor_id: int | None,
    at: datetime,
) -> ConfirmedList:
    """Apply the form's changes and named representatives to the proposal (all or nothing:
    Refusal); a confirmed core over the profile's cap is audited."""
    case, conference, profile = found.case, found.conference, found.profile
    agencies, proposed = found.agencies, found.selection
    confirmed = apply_changes(
        proposed.proposals,
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
    return ConfirmedList(profile, agencies, proposed, confirmed, named, last)


def audit_list_changes(
    session: Session,
    *,
    case_id: int | None,
    actor_id: int | None,
    at: datetime,
    answer: Stakeholders,
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


def apply(session: Session, asked: Asked, answer: Stakeholders, now: datetime) -> Applied:
    """Record the confirmed participants, with the reason for any change to the proposal."""
    rep = cases.acting_representative(session, code=answer.acting_representative)
    found = proposed_for(session, asked)
    case, conference, profile = found.case, found.conference, found.profile
    chosen = confirmed_list(session, found=found, answer=answer, actor_id=rep.id, at=now)
    rules = profile.rules_for(ConferenceType(conference.conference_type))
    assert case.id is not None
    family_involved = rules.client_and_family and consent.consent_in_force(
        session,
        case_id=case.id,
        scope=ConsentScope.family_involvement,
        today=case_today(session, case=case, now=now),
    )
    participant_ids = record_participants(
        session,
        conference=conference,
        proposals=chosen.proposals,
        client_and_family=rules.client_and_family,
        client_phases=[str(p) for p in rules.client_phases()],
        family_involved=family_involved,
        intermediary_code=answer.intermediary
        or default_intermediary(case, chosen.selection, chosen.agencies),
        representatives=chosen.named,
        last=chosen.last,
        family_relations=[str(r) for r in answer.family_members],
    )
    for agency, (before, after) in sorted(substitutions(chosen.named, chosen.last).items()):
        audit(
            session,
            action="participants.substitution",
            case_id=case.id,
            actor_id=rep.id,
            at=now,
            detail=f"{agency}: {after} attends instead of {before}",
        )
    audit_list_changes(session, case_id=case.id, actor_id=rep.id, at=now, answer=answer)
    audit(session, action="participants.confirmed", case_id=case.id, actor_id=rep.id, at=now)
    return Applied({"participant_ids": participant_ids}, next_phase=rules.phases[0])


STEP = Step(
    name="stakeholders",
    phase=Phase.stakeholders,
    form=Stakeholders,
    describe=describe,
    apply=apply,
    choices=offered,
    defaults=defaults,
    late_after_days=3,
)
