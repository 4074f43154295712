"""The notification outbox: one row per message, recipient and channel, written once per key."""

from datetime import datetime

from sqlmodel import Session, col, select

from models.record.database import saved_id
from models.record.tables import Case, Channel, Conference, Notification
from models.vocabulary import Role


def notification_key(
    *, reference: str, cycle: int, event: str, recipient: str, channel: str, version: int = 0
) -> str:
    """(case, cycle, event, recipient, channel): the idempotency key of one message."""
    suffix = f"/v{version}" if version else ""
    return f"{reference}/c{cycle}/{event}/{recipient}/{channel}{suffix}"


def queue(
    session: Session,
    *,
    key: str,
    case_id: int,
    conference_id: int | None,
    event: str,
    recipient_agency_id: int | None,
    recipient_role: Role,
    channel: str,
    now: datetime,
    detail: dict[str, object] | None = None,
) -> Notification:
    """Queue a message unless one with this key exists; returns the row either way."""
    existing = session.exec(select(Notification).where(Notification.key == key)).first()
    if existing is not None:
        return existing
    row = Notification(
        key=key,
        case_id=case_id,
        conference_id=conference_id,
        event=event,
        recipient_agency_id=recipient_agency_id,
        recipient_role=recipient_role,
        channel=channel,
        detail=detail or {},
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def channels_of(session: Session, *, agency_id: int) -> list[Channel]:
    """The agency's active channels, in a stable order."""
    return list(
        session.exec(
            select(Channel)
            .where(Channel.agency_id == agency_id, Channel.active == True)  # noqa: E712
            .order_by(col(Channel.tag))
        )
    )


def queue_to_agency(
    session: Session,
    *,
    case: Case,
    conference: Conference,
    event: str,
    agency_id: int,
    role: Role,
    now: datetime,
    recipient: str | None = None,
    key_event: str | None = None,
    cycle: int | None = None,
    version: int = 0,
    detail: dict[str, object] | None = None,
) -> list[int]:
    """Queue `event` to one agency on each of its channels; returns the rows' ids.

    The key is built from the case, the cycle, `key_event` (default: the event), `recipient`
    (default: the agency id) and the channel, so each message is written once.
    """
    return [
        saved_id(
            queue(
                session,
                key=notification_key(
                    reference=case.reference,
                    cycle=conference.cycle if cycle is None else cycle,
                    event=key_event or event,
                    recipient=recipient or str(agency_id),
                    channel=channel.tag,
                    version=version,
                ),
                case_id=saved_id(case),
                conference_id=conference.id,
                event=event,
                recipient_agency_id=agency_id,
                recipient_role=role,
                channel=channel.tag,
                now=now,
                detail=detail,
            )
        )
        for channel in channels_of(session, agency_id=agency_id)
    ]
