"""The idempotency ledger: every side effect is recorded under a key and skipped when it exists."""

from typing import Any

from sqlmodel import Session, col, select

from models.tables import Effect, FormRefusal


def recorded(session: Session, *, key: str) -> dict[str, Any] | None:
    """The result of the effect recorded under `key`, or None if it has not happened."""
    effect = session.get(Effect, key)
    return None if effect is None else dict(effect.result)


def record(session: Session, *, key: str, case_id: int | None, result: dict[str, Any]) -> None:
    """Record an effect in the caller's transaction, so the effect and its key commit together."""
    session.add(Effect(key=key, case_id=case_id, result=result))
    session.flush()


def refusals(session: Session, *, step_key: str) -> list[FormRefusal]:
    """Earlier answers to a step that a business rule refused, oldest first."""
    query = select(FormRefusal).where(FormRefusal.step_key == step_key)
    return list(session.exec(query.order_by(col(FormRefusal.attempt))))


def record_refusal(session: Session, *, step_key: str, attempt: int, reason: str) -> None:
    if session.exec(
        select(FormRefusal).where(FormRefusal.step_key == step_key, FormRefusal.attempt == attempt)
    ).first():
        return
    session.add(FormRefusal(step_key=step_key, attempt=attempt, reason=reason))
    session.flush()
