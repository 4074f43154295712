"""Review cycles: start the cycle a scheduled run is for, start a review's run, move or cancel a
scheduled review, cancel what a closed case leaves. Runs cancelled outside caseconf are
reconciled beside recovery (`tasks/housekeeping.py`)."""

from datetime import date, datetime
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from prefect.states import Cancelled
from sqlmodel import col, select

from models.record.database import session_scope
from models.record.tables import Review
from models.rules import cases, review
from models.steps.parameters import ReviewChange
from models.vocabulary import CaseStatus, Phase, ReviewChangeReason, ReviewStatus
from tasks.policies import CHECK, DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES, now
from tasks.runs import start_cycle_run
from tasks.steps import forget_inputs


@task(persist_result=False, **DATABASE_RETRIES)
def start_cycle(case_id: int, cycle: int) -> bool:
    """Move the case into `cycle` if its review is due; True if the cycle should run now."""
    run_id = flow_run.get_id()
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        if case.status != CaseStatus.open:
            return False
        own = (
            session.exec(select(Review).where(Review.flow_run_id == run_id)).first()
            if run_id
            else None
        )
        if own is not None and own.status not in (ReviewStatus.scheduled, ReviewStatus.started):
            # A moved or cancelled review whose run started before its cancellation reached it.
            return False
        if case.cycle == cycle:
            return True
        if case.cycle == cycle - 1 and case.phase == Phase.review_scheduled:
            case.cycle = cycle
            cases.set_phase(session, case=case, phase=Phase.preparation, now=now())
            for row in session.exec(
                select(Review).where(Review.case_id == case_id, Review.cycle == cycle)
            ):
                if row.status == ReviewStatus.scheduled:
                    row.status = ReviewStatus.started
                    session.add(row)
            return True
        return False


def cancel_flow_runs(flow_run_ids: list[str], message: str) -> None:
    """Cancel the runs Prefect still holds as scheduled or waiting; final ones stay as they are."""
    with get_client(sync_client=True) as client:
        for run_id in flow_run_ids:
            run = client.read_flow_run(UUID(run_id))
            if run.state is None or run.state.is_final():
                continue
            client.set_flow_run_state(UUID(run_id), Cancelled(message=message), force=True)
            forget_inputs(UUID(run_id))


@task(**OUTSIDE_RETRIES)
def cancel_runs(flow_run_ids: list[str], message: str) -> None:
    """Cancel scheduled or waiting runs in Prefect (a closed case waits for nothing)."""
    cancel_flow_runs(flow_run_ids, message)


def start_review_run(
    review_id: int,
    *,
    at: datetime | None = None,
    replacing: str | None = None,
    phase: Phase | None = None,
) -> str:
    """Start the review's flow run and store its id on the review; returns the id.

    With `at`, the run is made once, `PREPARATION_LEAD` before the review is due (never before
    `at`): its versioned idempotency key makes a retry find the same run. With `replacing` (a
    run a stop of the serving process cut off), a new run starts now and is stored only if the
    review still follows the old one. `phase` is set on the case in the same transaction.
    """
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        if replacing is None and row.flow_run_id:
            return row.flow_run_id
        case = cases.get_case(session, row.case_id)
        reference, stage, conference_type = case.reference, case.stage, case.conference_type
        cycle, key, due_at = row.cycle, row.idempotency_key, row.due_at
    made = start_cycle_run(
        reference,
        cycle,
        stage,
        conference_type,
        key=f"{key}-recover-{replacing}" if replacing else key,
        at=None if at is None else review.review_run_at(due_at=due_at, now=at),
    )
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        if replacing is not None and row.flow_run_id != replacing:
            return made
        row.flow_run_id = made
        session.add(row)
        if phase is not None:
            case = cases.get_case(session, row.case_id)
            cases.set_phase(session, case=case, phase=phase, now=now())
    return made


def _left_behind(case_id: int) -> list[str]:
    """Runs of the case's future reviews that caseconf superseded or cancelled."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        return [
            r.flow_run_id
            for r in session.exec(
                select(Review).where(
                    Review.case_id == case_id,
                    Review.cycle > case.cycle,
                    col(Review.status).in_([ReviewStatus.superseded, ReviewStatus.cancelled]),
                )
            )
            if r.flow_run_id
        ]


@task(cache_policy=EFFECT, persist_result=True, **OUTSIDE_RETRIES)
def reschedule_review(case_id: int, due_on: date, reason: str, actor_id: int | None) -> str:
    """Move the case's next review to `due_on` (the usual hour, the conference's time zone): the
    scheduled version is superseded and its run cancelled, a new version gets its run. Returns
    the new run's id; a retry finds what the first attempt did."""
    ReviewChangeReason(reason)  # a code, never free text: it is kept in the audit log
    with session_scope() as session:
        at = now()
        case = cases.get_case(session, case_id)
        due_at = review.review_due_at(session, case=case, on=due_on, now=at)
        _, planned = review.replan_review(
            session, case=case, due_at=due_at, now=at, actor_id=actor_id, reason=reason
        )
        review_id, reference = planned.id, case.reference
    assert review_id is not None
    cancel_flow_runs(_left_behind(case_id), f"{reference}: review moved")
    return start_review_run(review_id, at=now())


@task(persist_result=False, **DATABASE_RETRIES)
def cancel_review(case_id: int, reason: str, actor_id: int | None) -> list[str]:
    """Cancel the case's scheduled review in the record; returns the runs to cancel in Prefect."""
    ReviewChangeReason(reason)
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        cancelled = review.cancel_review(
            session, case=case, now=now(), actor_id=actor_id, reason=reason
        )
        return [r.flow_run_id for r in cancelled if r.flow_run_id]


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def check_review_change(change: ReviewChange) -> tuple[int, int]:
    """Refuse a move or cancel that cannot be done, naming each field; returns the case's and
    the acting representative's ids."""
    with session_scope() as session:
        rep = cases.acting_representative(session, code=change.acting_representative)
        case = cases.case_by_reference(session, change.case_reference)
        review.check_review_change(
            session, case=case, action=change.action, on=change.review_on, now=now()
        )
        assert case.id is not None and rep.id is not None
        return case.id, rep.id
