"""`case-stage` and `case-transfer`: a case moves along the prison-exit continuum, or changes hands."""

from prefect import flow, get_run_logger

from flows.notifications import deliver_messages
from models.steps.parameters import StageMove, Transfer
from tasks.reviews import reschedule_review
from tasks.runs import relabel_open_runs
from tasks.stages import move, transfer


@flow(name="case-stage", persist_result=True)
def move_stage(change: StageMove) -> str:
    """Move the case; a pre-release conference or a follow-up after release replaces the
    scheduled review when the profile says so."""
    outcome = move(change)
    logger = get_run_logger()
    logger.info("%s: %s -> %s.", change.case_reference, outcome.from_stage, outcome.to_stage)
    if outcome.next_conference_on is not None and outcome.rule is not None:
        run = reschedule_review(
            outcome.case_id, outcome.next_conference_on, "stage_move", outcome.actor_id
        )
        logger.info(
            "%s: next conference on %s (%s), flow run %s.",
            change.case_reference,
            outcome.next_conference_on,
            outcome.rule,
            run,
        )
    relabel_open_runs(outcome.case_id)
    deliver_messages(outcome.case_id, change.case_reference)
    return f"moved to {outcome.to_stage}"


@flow(name="case-transfer", persist_result=True)
def transfer_case(change: Transfer) -> str:
    """Hand the case to another area or lead; its stage and whole history stay."""
    relabel_open_runs(transfer(change))  # the `area:` and `lead:` tags follow the transfer
    return "transferred"
