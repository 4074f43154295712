"""Serve every deployment from one process; on start, bring back cases a stop cut off mid-step."""

from typing import cast

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from deployments.recovery import recover_cases
from flows.close import case_close
from flows.lifecycle import case_lifecycle
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
    ]
    return [cast(RunnerDeployment, d) for d in made]


def main() -> None:
    settings = get_settings()
    recover_cases()
    serve(*deployments(), pause_on_shutdown=False, limit=settings.serve_limit)


if __name__ == "__main__":
    main()
