"""`case-review-plan`: a coordinator moves or cancels a case's scheduled review.

The Prefect UI cannot move a scheduled run, and an idempotency key returns the old run even when
it is cancelled: a move supersedes the review with a new version (a new key, a new run).
"""

from prefect import flow, get_run_logger

from flows.notifications import deliver_messages
from models.steps.parameters import ReviewChange
from models.vocabulary import ReviewChangeKind
from tasks.reviews import cancel_review, cancel_runs, check_review_change, reschedule_review


@flow(name="case-review-plan", persist_result=True)
def change_review_plan(change: ReviewChange) -> str:
    """Move the case's next review to a new date, or cancel it; the lead and coordinator are
    told. Refused, with field and reason, before anything is written."""
    case_id, actor_id = check_review_change(change)
    logger = get_run_logger()
    if change.action == ReviewChangeKind.move:
        assert change.review_on is not None  # checked above
        run = reschedule_review(case_id, change.review_on, change.reason, actor_id)
        logger.info(
            "%s: review moved to %s, flow run %s.", change.case_reference, change.review_on, run
        )
        outcome = "moved"
    else:
        runs = cancel_review(case_id, change.reason, actor_id)
        cancel_runs(runs, f"{change.case_reference}: review cancelled")
        logger.info("%s: review cancelled.", change.case_reference)
        outcome = "cancelled"
    deliver_messages(case_id, change.case_reference)
    return outcome
