"""Bring back every open case whose run a stop of the serving process cancelled or crashed, and
bring the record in line with runs cancelled outside caseconf (run housekeeping)."""

import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from sqlmodel import Session, col, select

from models.record.database import saved_id, session_scope
from models.record.tables import Case, Review
from models.rules import cases, review
from models.vocabulary import CaseStatus, Phase, ReviewStatus
from tasks.policies import CHECK, OUTSIDE_RETRIES, now
from tasks.reviews import start_review_run
from tasks.runs import start_cycle_run
from tasks.steps import forget_inputs

__all__ = ["RUNNER_SHUTDOWN", "cut_off", "reconcile", "reconcile_reviews", "recover_cases"]

logger = logging.getLogger("caseconf.recovery")

# What Prefect's runner writes when `serve` stops and cancels its in-flight runs.
RUNNER_SHUTDOWN = "Runner is shutting down"
# A case run cancelled this recently may be one caseconf is replacing (tasks.runs): wait a moment.
SETTLE = timedelta(minutes=1)


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


def _following_a_run(session: Session) -> list[tuple[Case, str]]:
    """Open cases in the middle of a cycle, each with the run it follows."""
    return [
        (c, c.current_flow_run_id)
        for c in session.exec(
            select(Case).where(
                Case.status == CaseStatus.open,
                col(Case.phase).not_in([Phase.review_scheduled, Phase.review_cancelled]),
            )
        )
        if c.current_flow_run_id
    ]


def recover_cases() -> list[str]:
    """Start a new run for each open case cut off mid-step; returns the case references."""
    with session_scope() as session:
        open_cases = [
            (c.reference, c.cycle, c.stage, c.conference_type, run_id)
            for c, run_id in _following_a_run(session)
        ]
    recovered = []
    with get_client(sync_client=True) as client:
        for reference, cycle, stage, conference_type, run_id in open_cases:
            if not cut_off(client.read_flow_run(UUID(run_id))):
                continue  # a run cancelled by hand: reconcile_reviews records it
            new_run = start_cycle_run(
                reference, cycle, stage, conference_type, key=f"{reference}-recover-{run_id}"
            )
            # The cut-off run will never read its forms again: its answers go with it.
            forget_inputs(UUID(run_id))
            logger.warning("%s: brought back as flow run %s.", reference, new_run)
            recovered.append(reference)
    return recovered


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


def _bring_back(review_id: int, old_run_id: str) -> str:
    """A review run the serving process's stop cut off before its cycle began: run it now."""
    made = start_review_run(review_id, replacing=old_run_id)
    forget_inputs(UUID(old_run_id))
    with session_scope() as session:
        row = session.get(Review, review_id)
        assert row is not None
        reference = cases.get_case(session, row.case_id).reference
    logger.warning("%s: its review run was cut off; brought back as %s.", reference, made)
    return made


def reconcile_reviews(*, settle: timedelta = SETTLE) -> list[str]:
    """Bring the record in line with runs cancelled or deleted outside caseconf: a scheduled
    review whose run is gone is cancelled; a case whose own run was cancelled by hand is
    audited. The coordinator is told once each. Returns the references concerned. A review run
    that a stop of the serving process cut off is run again."""
    with session_scope() as session:
        reviews: dict[str, int] = {
            r.flow_run_id: saved_id(r)
            for r in session.exec(select(Review).where(Review.status == ReviewStatus.scheduled))
            if r.flow_run_id
        }
        running: dict[str, int] = {run_id: saved_id(c) for c, run_id in _following_a_run(session)}
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
