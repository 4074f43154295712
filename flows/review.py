"""`case-review`: a review conference, started by its scheduled run (or to bring a case back)."""

from prefect import flow

from flows.cycle import run_cycle
from tasks.referral import find_case
from tasks.reviews import start_cycle


@flow(name="case-review", persist_result=True)
def case_review(case_reference: str, cycle: int) -> str:
    """Run cycle `cycle` of the case: its review conference, through release to the next review."""
    case = find_case(case_reference)
    if not start_cycle(case.id, cycle):
        return "not due: the case is closed or has moved past this cycle"
    return run_cycle(case.id)
