"""Invitations: queued in the outbox once the participants are confirmed."""

from prefect import task

from models.record.database import session_scope
from models.rules import cases
from models.rules.conference import get_conference
from models.rules.invitations import queue_invitations
from tasks.policies import DATABASE_RETRIES, EFFECT, now


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def invite(case_id: int, conference_id: int) -> list[int]:
    """Queue one invitation per participant and channel; each is written once per key."""
    with session_scope() as session:
        return queue_invitations(
            session,
            case=cases.get_case(session, case_id),
            conference=get_conference(session, conference_id),
            now=now(),
        )
