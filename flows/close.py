"""`case-close`: a coordinator closes a case, from any stage, with a reason."""

from prefect import flow
from prefect.runtime import flow_run

from flows.notifications import deliver_messages
from models.steps.parameters import Closure
from tasks.closure import close
from tasks.portfolio import refresh_case_timeline
from tasks.reviews import cancel_runs


@flow(name="case-close", persist_result=True)
def case_close(closure: Closure) -> str:
    """Close the case, cancel its upcoming conference, scheduled reviews and waiting run; its
    timeline shows the closure."""
    case_id, runs = close(closure)
    own = str(flow_run.get_id())
    cancel_runs([r for r in runs if r != own], f"{closure.case_reference} closed")
    deliver_messages(case_id, closure.case_reference)
    refresh_case_timeline(case_id)
    return "closed"
