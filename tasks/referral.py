"""The case as a run reads it: never cached, so a replay sees what changed in between."""

from models.record.database import session_scope
from models.rules import cases


def case_view(case_id: int) -> cases.CaseView:
    """The case as it stands now: never cached, so a replay sees what changed in between."""
    with session_scope() as session:
        return cases.view(cases.get_case(session, case_id))


def follows(case_id: int, flow_run_id: str) -> bool:
    """Whether the case follows this run already (`register_run` done)."""
    with session_scope() as session:
        return cases.get_case(session, case_id).current_flow_run_id == flow_run_id


def find_case(case_reference: str) -> cases.CaseView:
    with session_scope() as session:
        return cases.view(cases.case_by_reference(session, case_reference))
