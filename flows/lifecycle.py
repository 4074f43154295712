"""`case-lifecycle`: a coordinator refers a case; its first conference cycle runs to the review."""

from prefect import flow
from prefect.runtime import flow_run

from flows.cycle import run_cycle
from flows.steps import ask
from models.steps.referral import Referral
from models.steps.step import Asked
from tasks.steps import ledger_read_once


@flow(name="case-lifecycle", persist_result=True, log_prints=False)
def case_lifecycle(referral: Referral) -> str:
    """Refer a case, then walk its first conference cycle; each human step waits without a process."""
    run_id = str(flow_run.get_id())
    key = f"{run_id}-referral"
    with ledger_read_once([key]):
        # No parameter fails the run: what is wrong is shown above the referral form, which
        # asks for it again (the valid parameters come pre-filled).
        asked = Asked(run_id=run_id, given=referral.model_dump(mode="json"))
        referred = ask("referral", step_key=key, asked=asked)
    return run_cycle(int(referred["case_id"]))
