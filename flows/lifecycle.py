"""`case-lifecycle`: a coordinator refers a case; its first conference cycle runs to the review."""

from prefect import flow
from prefect.runtime import flow_run

from flows.cycle import run_cycle
from flows.forms import Referral, ReferralDetails
from flows.steps import ask
from tasks.referral import check_referral, refer


@flow(name="case-lifecycle", persist_result=True, log_prints=False)
def case_lifecycle(referral: Referral) -> str:
    """Refer a case, then walk its first conference cycle; each human step waits without a process."""
    problems = check_referral(referral)
    if problems:
        # Nothing has been written: the run fails with the field and the reason, no value.
        raise ValueError("; ".join(problems))
    run_id = str(flow_run.get_id())
    key = f"{run_id}-referral"
    referred = ask(
        step_key=key,
        form=ReferralDetails,
        description=(
            "### Refer a case\n"
            f"Referring agency: `{referral.referring_agency}`; stage: {referral.stage}.\n\n"
            "caseconf issues the case's pseudonymous reference; only that reference is ever "
            "shown in Prefect and in messages. The agency's own file number stays in "
            "caseconf's database and is deleted from Prefect once saved. Do not type names."
        ),
        apply=lambda answer, attempt: refer(key, attempt, referral, answer, run_id),
    )
    return run_cycle(int(referred["case_id"]))
