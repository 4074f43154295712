"""The conference as the flow reads it, and closing a case its conference decided to close."""

from prefect import task

from models.record.database import session_scope
from models.rules import cases, conference
from models.vocabulary import CaseStatus, ClosureReason
from tasks.policies import DATABASE_RETRIES, EFFECT, now


def conference_view(conference_id: int) -> conference.ConferenceView:
    """The conference as it is now (its type changes when it goes on as security)."""
    with session_scope() as session:
        return conference.view(conference.get_conference(session, conference_id))


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def close_after_decision(case_id: int, reason: ClosureReason, actor_id: int | None) -> None:
    """The conference decided to close the case: close it once, after its release."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        if case.status == CaseStatus.closed:
            return
        cases.close_case(session, case=case, reason=reason, actor_id=actor_id, note=None, now=now())
