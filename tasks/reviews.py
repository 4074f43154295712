"""Review cycles: start the cycle a scheduled run is for, and cancel what a closed case leaves."""

from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.states import Cancelled
from sqlmodel import select

from models import cases
from models.database import session_scope
from models.tables import Review
from models.vocabulary import CaseStatus, Phase, ReviewStatus
from tasks.policies import DATABASE_RETRIES, OUTSIDE_RETRIES, now
from tasks.steps import forget_inputs


@task(persist_result=False, **DATABASE_RETRIES)
def start_cycle(case_id: int, cycle: int) -> bool:
    """Move the case into `cycle` if its review is due; True if the cycle should run now."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        if case.status != CaseStatus.open:
            return False
        if case.cycle == cycle:
            return True
        if case.cycle == cycle - 1 and case.phase == Phase.review_scheduled:
            case.cycle = cycle
            cases.set_phase(session, case=case, phase=Phase.preparation, now=now())
            for review in session.exec(
                select(Review).where(Review.case_id == case_id, Review.cycle == cycle)
            ):
                if review.status == ReviewStatus.scheduled:
                    review.status = ReviewStatus.started
                    session.add(review)
            return True
        return False


@task(**OUTSIDE_RETRIES)
def cancel_runs(flow_run_ids: list[str], message: str) -> None:
    """Cancel scheduled or waiting runs in Prefect (a closed case waits for nothing)."""
    with get_client(sync_client=True) as client:
        for run_id in flow_run_ids:
            run = client.read_flow_run(UUID(run_id))
            if run.state is None or run.state.is_final():
                continue
            client.set_flow_run_state(UUID(run_id), Cancelled(message=message), force=True)
            forget_inputs(UUID(run_id))
