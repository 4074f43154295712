"""The audit log: append-only, who did, saw or exported what, for which case, and why. caseconf
only appends to it; it is read in the database, by those who audit."""

from datetime import datetime

from sqlmodel import Session

from models.record.tables import AuditEvent


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
