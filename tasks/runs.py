"""What Prefect shows of a case: the run's name and tags carry only the pseudonymous reference."""

from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client

from models import cases
from models.database import session_scope
from models.vocabulary import ConferenceType, Stage
from tasks.policies import DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES

CASE_TAG_PREFIXES = ("case:", "stage:", "type:")


def run_name(reference: str, cycle: int) -> str:
    return reference if cycle == 1 else f"{reference} review {cycle - 1}"


def case_tags(reference: str, stage: Stage, conference_type: ConferenceType | None) -> list[str]:
    tags = [f"case:{reference}", f"stage:{stage}"]
    if conference_type is not None:
        tags.append(f"type:{conference_type}")
    return tags


@task(cache_policy=EFFECT, persist_result=True, **OUTSIDE_RETRIES)
def label_run(
    flow_run_id: str,
    reference: str,
    cycle: int,
    stage: Stage,
    conference_type: ConferenceType | None,
) -> None:
    """Name the run by the case reference and tag it `case:`, `stage:` and `type:`."""
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
        kept = [t for t in run.tags if not t.startswith(CASE_TAG_PREFIXES)]
        client.update_flow_run(
            UUID(flow_run_id),
            name=run_name(reference, cycle),
            tags=kept + case_tags(reference, stage, conference_type),
        )


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def register_run(case_id: int, flow_run_id: str) -> None:
    """Make this run the one the case follows, so a restart knows which run to bring back."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        case.current_flow_run_id = flow_run_id
        session.add(case)
