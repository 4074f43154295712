"""The ledger behind every human step, and forgetting a step's form once its answer is ours."""

import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from prefect import task
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run

from models.record import ledger
from models.record.database import session_scope
from tasks.policies import DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES

# Plain reads, not tasks: they need no retry beyond the run's own, no cache (they must never
# be served from one) and no place in the UI, and a replay makes one per step it passes.
_KNOWN: ContextVar[tuple[frozenset[str], ledger.Steps | None] | None] = ContextVar(
    "caseconf_ledger", default=None
)


@contextmanager
def ledger_read_once(keys: Collection[str]) -> Iterator[None]:
    """Within: the steps under `keys` are answered from one read of the ledger, read again
    only after `ledger_changed()` (an answer applied or refused, forms forgotten)."""
    token = _KNOWN.set((frozenset(keys), None))
    try:
        yield
    finally:
        _KNOWN.reset(token)


def ledger_changed() -> None:
    """The next look-up reads the ledger again."""
    known = _KNOWN.get()
    if known is not None:
        _KNOWN.set((known[0], None))


def ledger_steps(step_key: str) -> ledger.Steps:
    """What the ledger holds for `step_key`: from the read-once snapshot that covers it, if any."""
    known = _KNOWN.get()
    if known is None or step_key not in known[0]:
        with session_scope() as session:
            return ledger.steps(session, keys={step_key})
    keys, steps = known
    if steps is None:
        with session_scope() as session:
            steps = ledger.steps(session, keys=keys)
        _KNOWN.set((keys, steps))
    return steps


def step_answered(step_key: str) -> dict[str, Any] | None:
    """The recorded result of an answered step (ids only), or None while it is open."""
    return ledger_steps(step_key).answered.get(step_key)


def step_refusals(step_key: str) -> list[str]:
    """The reasons earlier answers to this step were refused, oldest first."""
    return list(ledger_steps(step_key).refused.get(step_key, []))


def forget_inputs(flow_run_id: UUID, prefix: str = "", attempts_of: str | None = None) -> int:
    """Delete a run's forms and answers (all, or those whose key starts with `prefix`).

    With `attempts_of`, only the attempts of that step: `suspended-<step>-<n>-...` and not a
    step whose key merely starts the same way (`stakeholders` and `stakeholders-security`).
    """
    own = re.compile(rf"^suspended-{re.escape(attempts_of)}-\d+-") if attempts_of else None
    deleted = 0
    kept: set[str] = set()
    with get_client(sync_client=True) as client:
        while True:
            inputs = client.filter_flow_run_input(
                flow_run_id=flow_run_id, key_prefix=prefix, limit=100, exclude_keys=kept
            )
            if not inputs:
                return deleted
            for run_input in inputs:
                if own is not None and not own.match(run_input.key):
                    kept.add(run_input.key)
                    continue
                client.delete_flow_run_input(flow_run_id=flow_run_id, key=run_input.key)
                deleted += 1


@task(cache_policy=EFFECT, persist_result=True, **OUTSIDE_RETRIES)
def forget_answers(step_key: str) -> int:
    """Delete the step's forms and answers from Prefect, now that caseconf's database holds them."""
    flow_run_id = flow_run.get_id()
    assert flow_run_id is not None
    deleted = forget_inputs(
        UUID(flow_run_id), prefix=f"suspended-{step_key}-", attempts_of=step_key
    )
    # A later replay (this run's or a new run's, which never held these forms) skips the task.
    with session_scope() as session:
        ledger.record_forgotten(session, key=step_key)
    return deleted


@task(cache_policy=EFFECT, persist_result=True, **OUTSIDE_RETRIES)
def forget_attempt(step_key: str, attempt: int) -> int:
    """Delete a refused attempt's form and answer from Prefect as soon as the refusal is
    recorded: the next attempt has its own key, so nothing reads this one again."""
    flow_run_id = flow_run.get_id()
    assert flow_run_id is not None
    return forget_inputs(UUID(flow_run_id), prefix=f"suspended-{step_key}-{attempt}-")


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def refuse_step(step_key: str, attempt: int, reason: str) -> None:
    """Record that an answer could not even be read as the form, so the step is asked again."""
    with session_scope() as session:
        ledger.record_refusal(session, step_key=step_key, attempt=attempt, reason=reason)
