"""Closing a case from any stage, with the reason recorded."""

from prefect import task

from models.record.database import saved_id, session_scope
from models.rules import cases
from models.rules.conference import cancel_conference
from models.rules.invitations import queue_invitations
from models.steps.parameters import Closure
from tasks.policies import DATABASE_RETRIES, now


@task(persist_result=False, **DATABASE_RETRIES)
def close(closure: Closure) -> tuple[int, list[str]]:
    """Close the case, cancel its upcoming conference (participants are told); returns the case
    id and the Prefect runs to cancel (scheduled reviews, the run waiting for a form)."""
    with session_scope() as session:
        at = now()
        case = cases.case_by_reference(session, closure.case_reference)
        rep = cases.acting_representative(session, code=closure.acting_representative)
        conference = cases.current_conference(session, case=case)
        reviews = cases.close_case(
            session, case=case, reason=closure.reason, actor_id=rep.id, note=None, now=at
        )
        if conference is not None and cancel_conference(session, conference=conference, now=at):
            queue_invitations(session, case=case, conference=conference, now=at, event="cancelled")
        runs = [r.flow_run_id for r in reviews if r.flow_run_id]
        if case.current_flow_run_id:
            runs.append(case.current_flow_run_id)
        return saved_id(case), runs
