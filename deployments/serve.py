"""Serve every deployment from one process; on start, bring back cases a stop cut off mid-step."""

from datetime import timedelta
from typing import cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from deployments.recovery import recover_cases
from flows.close import case_close
from flows.coordination import record_handover, reschedule_conference, withdraw_consent_flow
from flows.lifecycle import case_lifecycle
from flows.notifications import notifications_sweep
from flows.review import case_review
from models.settings import get_settings


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
        notifications_sweep.to_deployment(
            name="sweep",
            description="Queue and send reminders, due and overdue notices and review notices.",
            interval=timedelta(minutes=get_settings().sweep_minutes),
            tags=["caseconf"],
        ),
    ]
    return [cast(RunnerDeployment, d) for d in made]


def main() -> None:
    settings = get_settings()
    recover_cases()
    serve(*deployments(), pause_on_shutdown=False, limit=settings.serve_limit)


if __name__ == "__main__":
    main()
