"""Every human step's work beside the flow: its form read when it is asked, the answer applied
once (one task for every step, `apply_step`), the ledger behind it, and the step's forms
forgotten by Prefect once the answer is ours."""

import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import Task, task
from prefect.client.orchestration import get_client
from prefect.runtime import flow_run
from pydantic import BaseModel
from sqlmodel import Session

from models.record import ledger
from models.record.database import session_scope
from models.rules import cases
from models.steps import registry
from models.steps.step import Asked, Form
from tasks.policies import DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES, StepOutcome, apply_once, now
from tasks.prefect_compat import form_input_prefix

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


def read_form(step: str, asked: Asked) -> Form:
    """The step's form as it is asked now: description, choices, pre-filled answers. A plain
    read, never cached (a directory loaded while the case waited shows in its next form)."""
    with session_scope() as session:
        return registry.step(step).read(session, asked, now())


def asks(step: str, asked: Asked) -> bool:
    """Whether a cycle asks `step` now (the action review: in review cycles only)."""
    with session_scope() as session:
        return registry.step(step).asks(session, asked, now())


@task(**DATABASE_RETRIES)
def apply_step(
    step: str, step_key: str, attempt: int, asked: Asked, answer: BaseModel
) -> StepOutcome:
    """Apply an answer to `step` once: its writes, the case's next phase and the ledger row in
    one transaction, or the refusal recorded (nothing else written)."""
    chosen = registry.step(step)

    def write(session: Session) -> dict[str, Any]:
        at = now()
        applied = chosen.apply(session, asked, answer, at)
        if applied.next_phase is not None:
            advance(session, asked, applied.next_phase, at)
        return applied.result

    return apply_once(step_key=step_key, case_id=asked.case_id, attempt=attempt, write=write)


def apply_task(step: str) -> Task[..., StepOutcome]:
    """`apply_step` under the step's own name (`apply-<step>`): what the UI and the logs show."""
    return apply_step.with_options(name=f"apply-{step}")


def advance(session: Session, asked: Asked, phase: str, at: datetime) -> None:
    """The case, and its conference where it has one, move to `phase`."""
    if asked.conference_id is not None:
        held = asked.conference(session)
        held.phase = phase
        session.add(held)
    cases.set_phase(session, case=asked.case(session), phase=phase, now=at)


def forget_inputs(flow_run_id: UUID, prefix: str = "", attempts_of: str | None = None) -> int:
    """Delete a run's forms and answers (all, or those whose key starts with `prefix`).

    With `attempts_of`, only the attempts of that step: `<step>-<n>` and not a step whose key
    merely starts the same way (`stakeholders` and `stakeholders-security`).
    """
    own = (
        re.compile(rf"^{re.escape(form_input_prefix(attempts_of + '-'))}\d+-")
        if attempts_of
        else None
    )
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
        UUID(flow_run_id), prefix=form_input_prefix(f"{step_key}-"), attempts_of=step_key
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
    return forget_inputs(UUID(flow_run_id), prefix=form_input_prefix(f"{step_key}-{attempt}-"))


@task(cache_policy=EFFECT, persist_result=True, **DATABASE_RETRIES)
def refuse_step(step_key: str, attempt: int, reason: str) -> None:
    """Record that an answer could not even be read as the form, so the step is asked again."""
    with session_scope() as session:
        ledger.record_refusal(session, step_key=step_key, attempt=attempt, reason=reason)
