"""Release: the decision takes effect and the next review is scheduled as a future flow run."""

from datetime import date
from typing import cast
from uuid import UUID

from prefect import task
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from models import cases, conference, release, review
from models.audit import audit
from models.database import session_scope
from models.ledger import record, recorded
from models.vocabulary import Phase
from tasks.policies import DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES, now
from tasks.runs import REVIEW_DEPLOYMENT, case_tags, run_name


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def release_decision(case_id: int, conference_id: int) -> list[int]:
    """Queue minutes per audience and action notices, once (keyed in the ledger)."""
    key = f"release/{case_id}/{conference_id}"
    with session_scope() as session:
        done = recorded(session, key=key)
        if done is not None:
            return list(done["notification_ids"])
        at = now()
        case = cases.get_case(session, case_id)
        row = conference.get_conference(session, conference_id)
        ids = release.release(session, case=case, conference=row, now=at)
        audit(
            session,
            action="conference.released",
            case_id=case_id,
            actor_id=None,
            at=at,
            detail=f"cycle {row.cycle}",
        )
        record(session, key=key, case_id=case_id, result={"notification_ids": ids})
        return ids


@task(cache_policy=EFFECT, persist_result=True, **OUTSIDE_RETRIES)
def schedule_review(case_id: int, conference_id: int, review_on: date) -> str:
    """Create the review's future flow run once; returns its id. No process waits for it."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        row = conference.get_conference(session, conference_id)
        due_at = review.review_starts_at(on=review_on, time_zone=row.time_zone)
        planned = review.plan_review(
            session, case=case, cycle=case.cycle + 1, due_at=due_at, now=now()
        )
        if planned.flow_run_id:
            return planned.flow_run_id
        reference, stage, conference_type = case.reference, case.stage, case.conference_type
        next_cycle, key, review_id = planned.cycle, planned.idempotency_key, planned.id
    flow_run = cast(
        FlowRun,
        run_deployment(
            REVIEW_DEPLOYMENT,
            parameters={"case_reference": reference, "cycle": next_cycle},
            scheduled_time=review.review_run_at(due_at=due_at, now=now()),
            flow_run_name=run_name(reference, next_cycle),
            tags=case_tags(reference, stage, conference_type),
            idempotency_key=key,
            timeout=0,
            as_subflow=False,
        ),
    )
    with session_scope() as session:
        stored = session.get(review.Review, review_id)
        assert stored is not None
        stored.flow_run_id = str(flow_run.id)
        case = cases.get_case(session, case_id)
        cases.set_phase(session, case=case, phase=Phase.review_scheduled, now=now())
        session.add(stored)
    return str(UUID(str(flow_run.id)))
