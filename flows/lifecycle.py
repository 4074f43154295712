"""`case-lifecycle`: a coordinator refers a case; its first conference cycle runs to the review."""

from prefect import flow
from prefect.runtime import flow_run

from flows.cycle import run_cycle
from flows.steps import ask
from models.steps.forms import Referral, ReferralDetails
from tasks.choices import referral_choices
from tasks.referral import check_referral, refer
from tasks.steps import ledger_read_once, step_answered


@flow(name="case-lifecycle", persist_result=True, log_prints=False)
def case_lifecycle(referral: Referral) -> str:
    """Refer a case, then walk its first conference cycle; each human step waits without a process."""
    run_id = str(flow_run.get_id())
    key = f"{run_id}-referral"
    with ledger_read_once([key]):
        # No parameter fails the run: what is wrong is shown above the referral form, which
        # asks for it again (the valid parameters come pre-filled). A replay past the referral
        # needs neither, and skips reading the directory and the profile for them.
        problems, valid = check_referral(referral) if step_answered(key) is None else ([], {})
        referred = ask(
            step_key=key,
            form=ReferralDetails,
            description=(
                "### Refer a case\n"
                "Check the referring agency, the stage and the governance profile, then give the "
                "referral's details.\n\n"
                "caseconf issues the case's pseudonymous reference; only that reference is ever "
                "shown in Prefect and in messages. The agency's own file number stays in "
                "caseconf's database and is deleted from Prefect once saved. Do not type names."
            ),
            apply=lambda answer, attempt: refer(key, attempt, answer, run_id),
            defaults=valid,
            choices=referral_choices,
            notice="; ".join(problems) or None,
        )
    return run_cycle(int(referred["case_id"]))
