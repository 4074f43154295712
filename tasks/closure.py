"""Closing a case from any stage, with the reason recorded."""

from prefect import task

from flows.forms import Closure
from models import cases
from models.database import session_scope
from tasks.policies import DATABASE_RETRIES, now


@task(persist_result=False, **DATABASE_RETRIES)
def close(closure: Closure) -> list[str]:
    """Close the case; returns the Prefect runs (scheduled reviews, the waiting run) to cancel."""
    with session_scope() as session:
        case = cases.case_by_reference(session, closure.case_reference)
        rep = cases.acting_representative(session, code=closure.acting_representative)
        reviews = cases.close_case(
            session, case=case, reason=closure.reason, actor_id=rep.id, note=None, now=now()
        )
        runs = [r.flow_run_id for r in reviews if r.flow_run_id]
        if case.current_flow_run_id:
            runs.append(case.current_flow_run_id)
        return runs
