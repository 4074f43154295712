"""A bare Prefect flow of a case's shape, for `python -m bench steps`: Prefect alone, no caseconf.

A referral form, then two forms (each `suspend_flow_run(wait_for_input=..., key=...)`), then a
review scheduled as a future run (`run_deployment(..., scheduled_time=..., timeout=0,
as_subflow=False)`), and no work in between. The forms take the same answers as caseconf's
referral, preparation and stakeholders forms, so both validate the same payloads.

Served by `python bench/bare.py` (or `-m bench.bare`) like `python -m deployments serve`
serves caseconf: `serve(..., pause_on_shutdown=False)`, the runner's poll from the same
environment (`PREFECT_RUNNER_POLL_FREQUENCY`, and `CASECONF_SERVE_POLL_SECONDS` when set).
This file imports nothing of caseconf.
"""

import os
from datetime import UTC, datetime, timedelta

from prefect import flow, serve, suspend_flow_run
from prefect.deployments import run_deployment
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import ConfigDict, Field


class _Form(RunInput):
    model_config = ConfigDict(hide_input_in_errors=True)


class ReferralForm(_Form):
    file_number: str = Field(min_length=1, max_length=60, description="the agency's own number")
    needs: list[str] = Field(default_factory=list, description="the case's needs")
    acting_representative: str = Field(min_length=1, description="your representative code")


class PreparationForm(_Form):
    conference_type: str = Field(description="security or social_network")
    starts_at: datetime = Field(description="when the conference meets")
    time_zone: str = Field(description="IANA time zone")
    location: str = Field(max_length=200, description="where it meets")
    acting_representative: str = Field(min_length=1)


class StakeholdersForm(_Form):
    acting_representative: str = Field(min_length=1)


def _key(reference: str, step: str) -> str:
    return f"{reference.lower()}-c1-{step}"


@flow(name="bare-case", persist_result=True)
def bare_case(reference: str) -> str:
    """Three forms, then the review as a scheduled run of `bare-review/review`."""
    suspend_flow_run(wait_for_input=ReferralForm, key=f"{_key(reference, 'referral')}-0")
    suspend_flow_run(wait_for_input=PreparationForm, key=f"{_key(reference, 'preparation')}-0")
    suspend_flow_run(wait_for_input=StakeholdersForm, key=f"{_key(reference, 'stakeholders')}-0")
    due = datetime.now(UTC) + timedelta(days=14)
    run_deployment(
        "bare-review/review",
        parameters={"reference": reference},
        scheduled_time=due,
        timeout=0,
        as_subflow=False,
        idempotency_key=f"{reference}-review-{flow_run.get_id()}",
    )
    return reference


@flow(name="bare-review", persist_result=True)
def bare_review(reference: str) -> str:
    return reference


def main() -> None:
    poll = float(os.environ.get("CASECONF_SERVE_POLL_SECONDS") or 0) or None
    serve(
        bare_case.to_deployment(name="case"),  # type: ignore[arg-type]
        bare_review.to_deployment(name="review"),  # type: ignore[arg-type]
        pause_on_shutdown=False,
        **({"query_seconds": poll} if poll else {}),
    )


if __name__ == "__main__":
    main()
