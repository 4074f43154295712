"""The conference phases: preparation, information, family-only, decision, action review."""

from prefect import task
from sqlmodel import Session

from models.config.profile import load_profile
from models.config.settings import get_settings
from models.record.audit import audit
from models.record.database import session_scope
from models.rules import actions, cases, conference, stages, venues
from models.rules.conference import aware_start as _aware
from models.steps.forms import ActionReview, Decision, FamilyPlan, Information, Preparation
from models.vocabulary import CaseStatus, ClosureReason, ConferenceKind, ConferenceType, Phase
from tasks.policies import DATABASE_RETRIES, EFFECT, StepOutcome, apply_once, now


@task(**DATABASE_RETRIES)
def prepare(step_key: str, attempt: int, case_id: int, answer: Preparation) -> StepOutcome:
    """Open the cycle's conference: type, time and place."""

    def write(session: Session) -> dict[str, int]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        case = cases.get_case(session, case_id)
        row = conference.open_conference(
            session,
            case=case,
            kind=ConferenceKind.first if case.cycle == 1 else ConferenceKind.review,
            conference_type=answer.conference_type,
            starts_at=_aware(answer.starts_at, answer.time_zone),
            time_zone=answer.time_zone,
            location=venues.place(
                session, answer.location, free_text=get_settings().free_text_place
            ),
            now=at,
        )
        cases.set_phase(session, case=case, phase=Phase.stakeholders, now=at)
        audit(
            session,
            action="conference.prepared",
            case_id=case_id,
            actor_id=rep.id,
            at=at,
            detail=f"cycle {case.cycle}, {answer.conference_type}",
        )
        assert row.id is not None
        return {"conference_id": row.id}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


def conference_view(conference_id: int) -> conference.ConferenceView:
    with session_scope() as session:
        return conference.view(conference.get_conference(session, conference_id))


def describe_open_actions(case_id: int) -> str:
    """Markdown list of the case's open actions, for the action-review form (never persisted)."""
    with session_scope() as session:
        return actions.describe_open_actions(session, case_id=case_id)


NO_PLAN = "_No plan items._"


def describe_plan(conference_id: int) -> str:
    """Markdown list of the family's plan items, for the decision form (never persisted)."""
    with session_scope() as session:
        items = conference.plan_items(session, conference_id=conference_id)
        return "\n".join(f"{p.number}. {p.text} *({p.classification})*" for p in items) or NO_PLAN


def plan_numbers(conference_id: int) -> list[int]:
    """The numbers of the family's plan items: the decision form has one entry per item ready."""
    with session_scope() as session:
        return [p.number for p in conference.plan_items(session, conference_id=conference_id)]


@task(**DATABASE_RETRIES)
def review_actions(step_key: str, attempt: int, case_id: int, answer: ActionReview) -> StepOutcome:
    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        updated = actions.review_open_actions(
            session,
            case_id=case_id,
            updates=answer.updates,
            today=stages.case_today(session, case=cases.get_case(session, case_id), now=at),
            now=at,
        )
        audit(session, action="actions.reviewed", case_id=case_id, actor_id=rep.id, at=at)
        return {"action_ids": updated}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


@task(**DATABASE_RETRIES)
def record_information(
    step_key: str, attempt: int, case_id: int, conference_id: int, answer: Information
) -> StepOutcome:
    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        row = conference.get_conference(session, conference_id)
        phases = (
            load_profile(cases.get_case(session, case_id).profile)
            .rules_for(ConferenceType(row.conference_type))
            .phases
        )
        next_phase = phases[phases.index(Phase.information) + 1]
        ids = conference.record_information(
            session, conference=row, entries=answer.contributions, next_phase=next_phase, now=at
        )
        cases.set_phase(session, case=cases.get_case(session, case_id), phase=next_phase, now=at)
        audit(
            session,
            action="conference.information",
            case_id=case_id,
            actor_id=rep.id,
            at=at,
            detail=f"{len(ids)} items",
        )
        return {"information_ids": ids}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


@task(**DATABASE_RETRIES)
def record_family_plan(
    step_key: str, attempt: int, case_id: int, conference_id: int, answer: FamilyPlan
) -> StepOutcome:
    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        row = conference.get_conference(session, conference_id)
        ids = conference.record_family_plan(session, conference=row, items=answer.plan_items)
        cases.set_phase(
            session, case=cases.get_case(session, case_id), phase=Phase.decision, now=at
        )
        audit(session, action="conference.family_plan", case_id=case_id, actor_id=rep.id, at=at)
        return {"plan_item_ids": ids}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


@task(**DATABASE_RETRIES)
def record_decision(
    step_key: str, attempt: int, case_id: int, conference_id: int, answer: Decision
) -> StepOutcome:
    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        case = cases.get_case(session, case_id)
        row = conference.get_conference(session, conference_id)
        action_ids = conference.record_decision(
            session,
            case=case,
            conference=row,
            plan_decisions=answer.plan_decisions,
            decisions=answer.decisions,
            shared_decisions=answer.shared_decisions,
            actions=answer.actions,
            next_review_on=answer.next_review_on,
            today=stages.case_today(session, case=case, now=at),
            closes=answer.close_reason is not None,
        )
        cases.set_phase(session, case=case, phase=Phase.release, now=at)
        audit(session, action="conference.decision", case_id=case_id, actor_id=rep.id, at=at)
        return {
            "action_ids": action_ids,
            "next_review_on": answer.next_review_on.isoformat() if answer.next_review_on else None,
            "close_reason": answer.close_reason,
            "actor_id": rep.id,
        }

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def close_after_decision(case_id: int, reason: ClosureReason, actor_id: int | None) -> None:
    """The conference decided to close the case: close it once, after its release."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        if case.status == CaseStatus.closed:
            return
        cases.close_case(session, case=case, reason=reason, actor_id=actor_id, note=None, now=now())
