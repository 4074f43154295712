"""Sending the outbox: each row on its own, so a retry re-sends only what failed."""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from models.messaging.channels import DeliveryError, Transport
from models.messaging.delivery import compose
from models.messaging.mail_plugin import sending
from models.record.database import session_scope
from models.record.tables import Agency, Case, Notification
from models.vocabulary import NotificationStatus


@dataclass(frozen=True)
class Failure:
    """A message that could not be delivered: what the coordinator is shown (no content)."""

    reference: str
    event: str
    recipient: str
    channel: str
    reason: str


def pending(session: Session, *, case_id: int | None = None) -> list[int]:
    query = select(Notification.id).where(Notification.status == NotificationStatus.queued)
    if case_id is not None:
        query = query.where(Notification.case_id == case_id)
    return [i for i in session.exec(query.order_by(col(Notification.id))) if i is not None]


def send_one(
    notification_id: int,
    *,
    transport: Transport,
    mail_from: str,
    duration: timedelta,
    now: datetime,
) -> NotificationStatus:
    """Send one queued message; DeliveryError (already recorded on the row) if it failed."""
    with session_scope() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        if row.status != NotificationStatus.queued:
            return NotificationStatus(row.status)  # sent before: a replay sends nothing
        outgoing = compose(
            session, notification=row, mail_from=mail_from, duration=duration, now=now
        )
        key = row.key
    try:
        with sending(key):  # the same Message-ID however often the row is sent
            transport.send(outgoing)
    except DeliveryError as error:
        with session_scope() as session:
            row = session.get(Notification, notification_id)
            assert row is not None
            row.attempts += 1
            row.last_error = error.reason[:500]
            session.add(row)
        raise
    with session_scope() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        row.attempts += 1
        row.status = NotificationStatus.sent
        row.sent_at = now
        row.last_error = None
        session.add(row)
    return NotificationStatus.sent


def mark_failed(notification_id: int) -> None:
    """After the last retry: failed, with the reason kept, until the re-send command runs."""
    with session_scope() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        if row.status == NotificationStatus.queued:
            row.status = NotificationStatus.failed
            session.add(row)


def failures(session: Session, *, case_id: int | None = None) -> list[Failure]:
    query = select(Notification, Case, Agency).where(
        Notification.status == NotificationStatus.failed,
        Notification.case_id == Case.id,
        Notification.recipient_agency_id == Agency.id,
    )
    if case_id is not None:
        query = query.where(Notification.case_id == case_id)
    return [
        Failure(
            reference=case.reference,
            event=n.event,
            recipient=agency.code,
            channel=n.channel,
            reason=n.last_error or "unknown",
        )
        for n, case, agency in session.exec(query.order_by(col(Notification.id)))
    ]


def requeue_failed(session: Session) -> list[int]:
    """Put every failed message back in the queue (the re-send command); returns their ids."""
    rows = list(
        session.exec(select(Notification).where(Notification.status == NotificationStatus.failed))
    )
    for row in rows:
        row.status = NotificationStatus.queued
        session.add(row)
    session.flush()
    return [r.id for r in rows if r.id is not None]


def send_now(
    ids: list[int],
    *,
    transport: Transport,
    mail_from: str,
    duration: timedelta,
    now: datetime,
    workers: int = 8,
) -> int:
    """Send each row once, concurrently, without retries; what fails is marked failed again.

    For the re-send command; inside flows, delivery is a Prefect task with retries instead.
    """

    def attempt(notification_id: int) -> bool:
        try:
            send_one(
                notification_id,
                transport=transport,
                mail_from=mail_from,
                duration=duration,
                now=now,
            )
        except DeliveryError:
            mark_failed(notification_id)
            return False
        return True

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(pool.map(attempt, ids))
