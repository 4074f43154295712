"""Release: the decision takes effect and the next review is scheduled as a future flow run."""

from datetime import date

from prefect import get_run_logger, task

from models.record.audit import audit
from models.record.database import session_scope
from models.record.ledger import record, recorded
from models.rules import cases, conference, release, review
from models.vocabulary import Phase
from tasks.policies import DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES, now
from tasks.portfolio import publish_timeline
from tasks.reviews import start_review_run


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
        review_id = planned.id
    assert review_id is not None
    flow_run = start_review_run(review_id, at=now(), phase=Phase.review_scheduled)
    try:  # the cycle ends here: its timeline shows the review (a view: never fail for it)
        publish_timeline(case_id)
    except Exception:
        get_run_logger().warning("case %s: timeline not refreshed after the review.", case_id)
    return flow_run
