"""The audit log: append-only, who did, saw or exported what, for which case, and why."""

from datetime import datetime

from sqlmodel import Session, col, select

from models.tables import AuditEvent


def audit(
    session: Session,
    *,
    action: str,
    case_id: int | None,
    actor_id: int | None,
    at: datetime,
    detail: str | None = None,
    justification: str | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        case_id=case_id,
        actor_id=actor_id,
        at=at,
        detail=detail,
        justification=justification,
    )
    session.add(event)
    session.flush()
    return event


def audit_trail(session: Session, *, case_id: int) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.case_id == case_id)
    return list(session.exec(query.order_by(col(AuditEvent.id))))
