"""Stage moves and transfers: record them, and say whether the next conference must move."""

from datetime import date

from prefect import task
from pydantic import BaseModel

from models.config.profile import Profile, load_profile
from models.record.database import session_scope
from models.rules import cases, review, stages
from models.rules.conference import get_conference
from models.steps.parameters import StageMove, Transfer
from models.vocabulary import Phase, Stage
from tasks.policies import DATABASE_RETRIES, now


class StageOutcome(BaseModel):
    """What a move or transfer came to, for the flow to act on."""

    case_id: int
    actor_id: int | None
    from_stage: str
    to_stage: str
    next_conference_on: date | None = None  # set when the scheduled review must move there
    rule: str | None = None


@task(persist_result=False, **DATABASE_RETRIES)
def move(change: StageMove) -> StageOutcome:
    """Record the move (refused with field and reason if the continuum does not allow it: docs/domain.md)."""
    with session_scope() as session:
        at = now()
        rep = cases.acting_representative(session, code=change.acting_representative)
        case = cases.case_by_reference(session, change.case_reference)
        profile = load_profile(case.profile)
        # One day for every date rule of the move: the conference's, not UTC's.
        today = stages.case_today(session, case=case, now=at)
        moved = stages.move_stage(
            session,
            case=case,
            to_stage=change.to_stage,
            reason=change.reason,
            effective_on=change.effective_on or today,
            release_on=change.release_on,
            actor_id=rep.id,
            now=at,
        )
        assert case.id is not None
        outcome = StageOutcome(
            case_id=case.id,
            actor_id=rep.id,
            from_stage=moved.from_stage,
            to_stage=moved.to_stage,
        )
        # Only a case waiting for its next conference has one to move; in the middle of a
        # cycle the decision's default date follows the new stage instead (stages.next_conference).
        if case.phase not in (Phase.review_scheduled, Phase.review_cancelled):
            return outcome
        scheduled = review.scheduled_reviews(session, case_id=outcome.case_id)
        scheduled_on = min((r.due_at for r in scheduled), default=None)
        due = stages.conference_due_after_move(
            profile=profile,
            moved=moved,
            today=today,
            scheduled_on=scheduled_on.date() if scheduled_on else None,
        )
        if due is not None:
            outcome.next_conference_on, outcome.rule = due.on, due.rule
        return outcome


@task(persist_result=False, **DATABASE_RETRIES)
def transfer(change: Transfer) -> int:
    """Record the transfer; the new lead is proposed from the next conference on."""
    with session_scope() as session:
        at = now()
        rep = cases.acting_representative(session, code=change.acting_representative)
        case = cases.case_by_reference(session, change.case_reference)
        stages.transfer_case(
            session,
            case=case,
            area=change.area,
            lead_agency=change.lead_agency,
            profile=load_profile(case.profile),
            actor_id=rep.id,
            reason=change.reason,
            now=at,
        )
        assert case.id is not None
        return case.id


def next_conference_default(
    case_id: int, conference_id: int, profile: Profile | None = None
) -> tuple[date, str]:
    """The decision form's default date for the next conference, and the rule behind it (by
    the case's profile as read for this replay, or read now)."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        conference = get_conference(session, conference_id)
        due = stages.next_conference(
            profile=profile if profile is not None else load_profile(case.profile),
            stage=Stage(case.stage),
            decided_on=stages.case_today(session, case=case, now=now()),
            release_on=case.release_on,
            released_on=case.released_on,
            held_since_move=stages.held_since_move(
                session, case=case, conference_created_at=conference.created_at
            ),
        )
        return due.on, due.rule
