"""The idempotency ledger: every side effect is recorded under a key and skipped when it exists."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from models.record.tables import Effect, FormRefusal

#: A step's forms and answers left Prefect: `<step key>/forgotten`, beside the step's own row.
FORGOTTEN = "/forgotten"


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


def record_forgotten(session: Session, *, key: str) -> None:
    """Note that the step's forms and answers were deleted from Prefect (once per step)."""
    if session.get(Effect, key + FORGOTTEN) is None:
        step = session.get(Effect, key)
        session.add(Effect(key=key + FORGOTTEN, case_id=step.case_id if step else None, result={}))
        session.flush()


@dataclass(frozen=True)
class Steps:
    """What the ledger holds for some steps, read at once: results, refusals, forms forgotten."""

    keys: frozenset[str]
    answered: dict[str, dict[str, Any]]
    refused: dict[str, list[str]]
    forgotten: frozenset[str]


def steps(session: Session, *, keys: Collection[str]) -> Steps:
    """One read of the ledger for the steps under `keys` (exact keys, so indexes serve it)."""
    wanted = set(keys)
    effects = {
        e.key: dict(e.result)
        for e in session.exec(
            select(Effect).where(col(Effect.key).in_(wanted | {k + FORGOTTEN for k in wanted}))
        )
    }
    refused: dict[str, list[str]] = {}
    query = select(FormRefusal).where(col(FormRefusal.step_key).in_(wanted))
    for row in session.exec(query.order_by(col(FormRefusal.step_key), col(FormRefusal.attempt))):
        refused.setdefault(row.step_key, []).append(row.reason)
    return Steps(
        keys=frozenset(wanted),
        answered={k: effects[k] for k in wanted if k in effects},
        refused=refused,
        forgotten=frozenset(k for k in wanted if k + FORGOTTEN in effects),
    )
