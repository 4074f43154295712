"""Invitations: queued in the outbox once the participants are confirmed."""

from prefect import task
from sqlmodel import col, select

from models.record.database import session_scope
from models.record.tables import Notification
from models.rules import cases
from models.rules.conference import get_conference
from models.rules.fallback import INVITED_EVENTS
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


def invitations_queued(case_id: int, conference_id: int) -> bool:
    """Whether the conference's invitations are in the outbox (`invite` done: it queues every
    participant's in one transaction). `models.rules.fallback.was_invited`'s question, asked through
    the case's index: every replay asks it, and the outbox holds every case's messages."""
    with session_scope() as session:
        query = select(Notification.id).where(
            Notification.case_id == case_id,
            Notification.conference_id == conference_id,
            col(Notification.event).in_(INVITED_EVENTS),
        )
        return session.exec(query.limit(1)).first() is not None
