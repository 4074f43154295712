"""How tasks cache and retry: effects cache per run (so a resume's replay skips them), checks never."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prefect.cache_policies import INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE
from pydantic import BaseModel
from sqlmodel import Session

from models.errors import Refusal
from models.record import ledger
from models.record.database import session_scope

# An effect's result is cached for the flow run it happened in: the replay a resume causes
# reads it back instead of repeating the effect. TASK_SOURCE keeps two tasks with the same
# parameters (invite and release_decision both take case_id and conference_id) apart. A new run
# of the case has a new cache scope, so the database ledger (models.record.ledger) is what really keeps
# effects from happening twice.
EFFECT = INPUTS + TASK_SOURCE + RUN_ID
# A check (consent, the case's state) is never served from cache: a replay weeks later must
# see a withdrawal made in between.
CHECK = NO_CACHE


def _unless_refused(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass next time (a database or network fault), never a refusal."""
    try:
        state.result()
    except Refusal:
        return False
    except Exception:
        return True
    return True


DATABASE_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": [1, 5, 15],
    "retry_condition_fn": _unless_refused,
}
OUTSIDE_RETRIES: dict[str, Any] = {
    "retries": 4,
    "retry_delay_seconds": [2, 10, 30, 120],
    "retry_condition_fn": _unless_refused,
}


def now() -> datetime:
    return datetime.now(UTC)


class StepOutcome(BaseModel):
    """What applying a form answer came to: ids of what was written, or the refusal's reasons."""

    result: dict[str, Any] | None = None
    refusal: str | None = None


def apply_once(
    *, step_key: str, case_id: int | None, attempt: int, write: Callable[[Session], dict[str, Any]]
) -> StepOutcome:
    """Apply an answer and record it in the ledger in one transaction, or record the refusal.

    A refusal rolls everything back: the case stays where it was and nothing is half-written.
    """
    with session_scope() as session:
        done = ledger.recorded(session, key=step_key)
        if done is not None:
            return StepOutcome(result=done)
    try:
        with session_scope() as session:
            result = write(session)
            ledger.record(
                session, key=step_key, case_id=case_id or result.get("case_id"), result=result
            )
            return StepOutcome(result=result)
    except Refusal as refusal:
        with session_scope() as session:
            ledger.record_refusal(session, step_key=step_key, attempt=attempt, reason=str(refusal))
        return StepOutcome(refusal=str(refusal))
