"""What Prefect shows of a case: the run's name and tags carry only the pseudonymous reference."""

from datetime import datetime
from typing import cast
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.states import Cancelled

from models.record.database import session_scope
from models.reporting import portfolio
from models.rules import cases, review
from models.vocabulary import ConferenceType, Stage
from tasks.policies import DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES
from tasks.steps import forget_inputs

#: The deployment that runs a case's cycle (scheduled reviews, and runs brought back).
REVIEW_DEPLOYMENT = "case-review/review"

CASE_TAG_PREFIXES = ("case:", "stage:", "type:", "profile:", "area:", "lead:")


def run_name(reference: str, cycle: int) -> str:
    return reference if cycle == 1 else f"{reference} review {cycle - 1}"


def case_tags(reference: str, stage: Stage, conference_type: ConferenceType | None) -> list[str]:
    tags = [f"case:{reference}", f"stage:{stage}"]
    if conference_type is not None:
        tags.append(f"type:{conference_type}")
    return tags


def placement_tags(reference: str) -> list[str]:
    """`profile:`, `area:` and `lead:` tags of the case as the record says now (the UI's filters
    let a manager narrow the dashboard to an area); an area or lead not known yet has none."""
    with session_scope() as session:
        case = cases.case_by_reference(session, reference)
        assert case.id is not None
        area, lead = portfolio.placement(session, case_id=case.id)
        tags = [f"profile:{case.profile}"]
    return tags + ([f"area:{area}"] if area else []) + ([f"lead:{lead}"] if lead else [])


def retagged(
    tags: list[str],
    reference: str,
    stage: Stage | str,
    conference_type: ConferenceType | str | None,
    placement: list[str] | None = None,
) -> list[str]:
    """A run's tags with the case's `case:`, `stage:` and `type:` tags (and, given, its
    `placement_tags`) made current."""
    kept = [t for t in tags if not t.startswith(CASE_TAG_PREFIXES)]
    return (
        kept
        + case_tags(
            reference, Stage(stage), ConferenceType(conference_type) if conference_type else None
        )
        + (placement or [])
    )


def start_cycle_run(
    reference: str,
    cycle: int,
    stage: Stage | str,
    conference_type: ConferenceType | str | None,
    *,
    key: str,
    at: datetime | None = None,
) -> str:
    """Create the `case-review/review` run of a case's cycle (at `at`, default now), named and
    tagged as the case; `key` makes it once. Returns the run's id; no process waits for it."""
    made = cast(
        FlowRun,
        run_deployment(
            REVIEW_DEPLOYMENT,
            parameters={"case_reference": reference, "cycle": cycle},
            scheduled_time=at,
            flow_run_name=run_name(reference, cycle),
            tags=case_tags(
                reference,
                Stage(stage),
                ConferenceType(conference_type) if conference_type else None,
            )
            + placement_tags(reference),
            idempotency_key=key,
            timeout=0,
            as_subflow=False,
        ),
    )
    return str(made.id)


@task(cache_policy=EFFECT, persist_result=True, **OUTSIDE_RETRIES)
def label_run(
    flow_run_id: str,
    reference: str,
    cycle: int,
    stage: Stage,
    conference_type: ConferenceType | None,
) -> None:
    """Name the run by the case reference and tag it `case:`, `stage:`, `type:`, `profile:`,
    `area:` and `lead:`."""
    placement = placement_tags(reference)
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        client.update_flow_run(
            UUID(flow_run_id),
            name=run_name(reference, cycle),
            tags=retagged(run.tags, reference, stage, conference_type, placement),
        )


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def register_run(case_id: int, flow_run_id: str) -> None:
    """Make this run the one the case follows, so a restart knows which run to bring back."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        case.current_flow_run_id = flow_run_id
        session.add(case)


@task(**OUTSIDE_RETRIES)
def restart_waiting_run(case_id: int, why: str) -> str | None:
    """If the case's run waits for a form, replace it with a new run of the same cycle.

    The new run replays the answered steps from the ledger and meets the rules anew at its
    next step (a withdrawn consent stops the social-network track there, at once). A run that
    is working between steps meets them by itself a moment later: it is left alone. Returns
    the new run's id, or None.
    """
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        reference, cycle, old = case.reference, case.cycle, case.current_flow_run_id
        stage, conference_type = case.stage, case.conference_type
    if old is None:
        return None
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(old))
        if run.state is None or run.state.type != StateType.PAUSED:
            return None
        client.set_flow_run_state(UUID(old), Cancelled(message=why), force=True)
    forget_inputs(UUID(old))
    new_run = start_cycle_run(
        reference, cycle, stage, conference_type, key=f"{reference}-restart-{old}"
    )
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        if case.current_flow_run_id == old:
            # Recovery and the reconciler follow this field: the cancelled run is not "by hand".
            case.current_flow_run_id = new_run
            session.add(case)
    return new_run


@task(**OUTSIDE_RETRIES)
def relabel_open_runs(case_id: int) -> int:
    """After a stage move, a transfer or a step, retag the case's waiting run and scheduled
    reviews with its stage, area and lead, so the UI's filters tell the truth before those runs
    start again. Returns how many."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        reference, stage, conference_type = case.reference, case.stage, case.conference_type
        run_ids = {case.current_flow_run_id} | {
            r.flow_run_id for r in review.scheduled_reviews(session, case_id=case_id)
        }
    placement = placement_tags(reference)
    relabelled = 0
    with get_client(sync_client=True) as client:
        for run_id in sorted(r for r in run_ids if r):
            run = client.read_flow_run(UUID(run_id))
            if run.state is not None and run.state.is_final():
                continue
            client.update_flow_run(
                UUID(run_id),
                tags=retagged(run.tags, reference, stage, conference_type, placement),
            )
            relabelled += 1
    return relabelled
