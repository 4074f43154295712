"""Serve every deployment from one process; on start, bring back cases a stop cut off mid-step."""

import os
from datetime import timedelta
from typing import Any, cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from deployments.parameters import with_parameter_choices
from flows.close import case_close
from flows.coordination import record_handover, reschedule_conference, withdraw_consent_flow
from flows.lifecycle import case_lifecycle
from flows.notifications import notifications_sweep
from flows.portfolio import portfolio_report
from flows.review import case_review
from flows.review_plan import change_review_plan
from flows.stage import move_stage, transfer_case
from models.config.settings import get_settings
from tasks.housekeeping import reconcile_reviews, recover_cases
from tasks.prefect_compat import check_prefect_version

FLOWS = {
    f.name: f
    for f in (
        case_lifecycle,
        case_review,
        case_close,
        reschedule_conference,
        record_handover,
        withdraw_consent_flow,
        move_stage,
        transfer_case,
        change_review_plan,
        notifications_sweep,
        portfolio_report,
    )
}


def deployments() -> list[RunnerDeployment]:
    made = [
        case_lifecycle.to_deployment(
            name="referral",
            description="Refer a new case: fill in the referring agency and stage, then follow "
            "the case's forms (Runs, filtered by tag `case:<reference>`).",
            tags=["caseconf"],
        ),
        case_review.to_deployment(
            name="review",
            description="A case's review conference. caseconf schedules these runs itself at the "
            "review date; start one by hand only to bring a case back.",
            tags=["caseconf"],
        ),
        case_close.to_deployment(
            name="close",
            description="Close a case from any stage with a reason; cancels its scheduled reviews.",
            tags=["caseconf"],
        ),
        reschedule_conference.to_deployment(
            name="reschedule",
            description="Move a case's upcoming conference; participants get updated invitations.",
            tags=["caseconf"],
        ),
        record_handover.to_deployment(
            name="record",
            description="Record that the intermediary handed the invitation to client or family.",
            tags=["caseconf"],
        ),
        withdraw_consent_flow.to_deployment(
            name="withdraw",
            description="Record that the client withdrew consent (no reason is asked).",
            tags=["caseconf"],
        ),
        move_stage.to_deployment(
            name="move",
            description="Move a case along the continuum (release date, release, recall, ...); "
            "a pre-release or follow-up conference replaces the scheduled review by the profile.",
            tags=["caseconf"],
        ),
        transfer_case.to_deployment(
            name="transfer",
            description="Hand a case to another area or lead agency; its stage and history stay.",
            tags=["caseconf"],
        ),
        change_review_plan.to_deployment(
            name="change",
            description="Move a case's scheduled review to a new date, or cancel it (the UI cannot "
            "move a scheduled run); a move after a cancellation schedules one again.",
            tags=["caseconf"],
        ),
        notifications_sweep.to_deployment(
            name="sweep",
            description="Queue and send reminders, due and overdue notices and review notices.",
            interval=timedelta(minutes=get_settings().sweep_minutes),
            tags=["caseconf"],
        ),
        portfolio_report.to_deployment(
            name="report",
            description="The managers' portfolio: open cases, waiting, reviews, actions, "
            "delivery, continuity and the quarter, as keyed artifacts (Artifacts page).",
            interval=timedelta(minutes=get_settings().portfolio_minutes),
            tags=["caseconf"],
        ),
    ]
    served = [cast(RunnerDeployment, d) for d in made]
    # Agencies, representatives and profiles as choices, read from the directory now.
    with_parameter_choices(served, FLOWS)
    return served


def poll() -> dict[str, Any]:
    """The runner's poll for due and resumed runs, in seconds: `CASECONF_SERVE_POLL_SECONDS`
    (fractions allowed; tests and benches use a fraction of a second), else Prefect's
    `PREFECT_RUNNER_POLL_FREQUENCY` (whole seconds). A resume waits up to one poll."""
    seconds = float(os.environ.get("CASECONF_SERVE_POLL_SECONDS") or 0)
    return {"query_seconds": seconds} if seconds > 0 else {}


def main() -> None:
    check_prefect_version()
    settings = get_settings()
    recover_cases()
    # Nothing else runs yet: a run cancelled by hand needs no time to settle.
    reconcile_reviews(settle=timedelta(0))
    runner = {"pause_on_shutdown": False, "limit": settings.serve_limit, **poll()}
    if settings.warm_start:
        # Only when on: it reaches into Prefect's internals (tasks/prefect_compat.py); off,
        # caseconf serves exactly as `prefect.serve` does.
        from deployments.warm_start import serve_warm

        serve_warm(deployments(), FLOWS, **runner)
    else:
        serve(*deployments(), **runner)


if __name__ == "__main__":
    main()
