"""Review cycles: start the cycle a scheduled run is for, move or cancel a scheduled review, cancel
what a closed case leaves, and notice runs cancelled outside caseconf."""

import logging
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.runtime import flow_run
from prefect.states import Cancelled
from sqlmodel import col, select

from models import cases, review
from models.database import session_scope
from models.forms import ReviewChange
from models.tables import Case, Review
from models.vocabulary import CaseStatus, Phase, ReviewChangeReason, ReviewStatus
from tasks.policies import CHECK, DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES, now
from tasks.runs import start_cycle_run
from tasks.steps import forget_inputs

logger = logging.getLogger("caseconf.reviews")

# What Prefect's runner writes when `serve` stops and cancels its in-flight runs.
RUNNER_SHUTDOWN = "Runner is shutting down"
# A case run cancelled this recently may be one caseconf is replacing (tasks.runs): wait a moment.
SETTLE = timedelta(minutes=1)


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


def schedule_review_run(review_id: int, *, at: datetime) -> str:
    """Create the review's future flow run once, `PREPARATION_LEAD` before it is due (never
    before `at`); its versioned idempotency key makes a retry find the same run."""
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        if row.flow_run_id:
            return row.flow_run_id
        case = cases.get_case(session, row.case_id)
        reference, stage, conference_type = case.reference, case.stage, case.conference_type
        cycle, key, due_at = row.cycle, row.idempotency_key, row.due_at
    made = start_cycle_run(
        reference,
        cycle,
        stage,
        conference_type,
        key=key,
        at=review.review_run_at(due_at=due_at, now=at),
    )
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        row.flow_run_id = made
        session.add(row)
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
    return schedule_review_run(review_id, at=now())


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


def _read_runs(ids: list[str]) -> dict[str, FlowRun]:
    """The runs Prefect still has, by id (a deleted run is missing)."""
    found: dict[str, FlowRun] = {}
    with get_client(sync_client=True) as client:
        for start in range(0, len(ids), 200):
            chunk = [UUID(i) for i in ids[start : start + 200]]
            for run in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk)
            ):
                found[str(run.id)] = run
    return found


def cut_off(run: FlowRun) -> bool:
    """The run died with the serving process, rather than being cancelled by a person."""
    state = run.state
    if state is None:
        return False
    if state.type == StateType.CRASHED:
        return True
    return state.type == StateType.CANCELLED and RUNNER_SHUTDOWN in (state.message or "")


def cancelled_by_hand(run: FlowRun, *, cancelling: bool = False) -> bool:
    """Cancelled (or, with `cancelling`, being cancelled), and not by the serving process
    stopping (recovery brings those back)."""
    state = run.state
    types = {StateType.CANCELLED} | ({StateType.CANCELLING} if cancelling else set())
    return state is not None and state.type in types and not cut_off(run)


def _bring_back(review_id: int, old_run_id: str) -> str:
    """A review run the serving process's stop cut off before its cycle began: run it now."""
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        case = cases.get_case(session, row.case_id)
        reference, stage, conference_type = case.reference, case.stage, case.conference_type
        cycle, key = row.cycle, row.idempotency_key
    made = start_cycle_run(
        reference, cycle, stage, conference_type, key=f"{key}-recover-{old_run_id}"
    )
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        if row.flow_run_id == old_run_id:
            row.flow_run_id = made
            session.add(row)
    forget_inputs(UUID(old_run_id))
    logger.warning("%s: its review run was cut off; brought back as %s.", reference, made)
    return made


def reconcile_reviews(*, settle: timedelta = SETTLE) -> list[str]:
    """Bring the record in line with runs cancelled or deleted outside caseconf: a scheduled
    review whose run is gone is cancelled; a case whose own run was cancelled by hand is
    audited. The coordinator is told once each. Returns the references concerned. A review run
    that a stop of the serving process cut off is run again."""
    with session_scope() as session:
        reviews: dict[str, int] = {
            r.flow_run_id: r.id  # type: ignore[misc]
            for r in session.exec(select(Review).where(Review.status == ReviewStatus.scheduled))
            if r.flow_run_id
        }
        running: dict[str, int] = {
            c.current_flow_run_id: c.id  # type: ignore[misc]
            for c in session.exec(
                select(Case).where(
                    Case.status == CaseStatus.open,
                    col(Case.phase).not_in([Phase.review_scheduled, Phase.review_cancelled]),
                )
            )
            if c.current_flow_run_id
        }
    runs = _read_runs([*reviews, *running])
    for run_id, review_id in list(reviews.items()):
        run = runs.get(run_id)
        if run is not None and cut_off(run):
            _bring_back(review_id, run_id)
            del reviews[run_id]
    settled = datetime.now(UTC) - settle
    concerned: list[str] = []
    with session_scope() as session:
        at = now()
        for run_id, review_id in reviews.items():
            run = runs.get(run_id)
            if run is not None and not cancelled_by_hand(run, cancelling=True):
                continue
            row = session.get(Review, review_id)
            assert row is not None
            if review.review_cancelled_outside(session, review=row, now=at):
                case = cases.get_case(session, row.case_id)
                logger.warning("%s: its scheduled review was cancelled in Prefect.", case.reference)
                concerned.append(case.reference)
        for run_id, case_id in running.items():
            run = runs.get(run_id)
            if run is None or not cancelled_by_hand(run):
                continue
            assert run.state is not None
            if run.state.timestamp > settled:
                continue
            case = cases.get_case(session, case_id)
            if case.current_flow_run_id != run_id or case.status != CaseStatus.open:
                continue  # replaced or closed meanwhile
            if review.run_cancelled_by_hand(session, case=case, flow_run_id=run_id, now=at):
                logger.warning(
                    "%s: its run was cancelled by hand; start case-review/review for cycle %d "
                    "to go on, or close the case.",
                    case.reference,
                    case.cycle,
                )
                concerned.append(case.reference)
    return concerned


@task(cache_policy=CHECK, persist_result=False, **OUTSIDE_RETRIES)
def reconcile() -> list[str]:
    """`reconcile_reviews` as a task of the sweep."""
    return reconcile_reviews()
