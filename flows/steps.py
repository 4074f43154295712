"""A human step: suspend for its form, apply the answer, ask again with the reason if it is
refused; once accepted, the case's timeline and its runs' tags are refreshed."""

from typing import Any, TypeVar

import pydantic
from prefect import get_run_logger, suspend_flow_run
from prefect.futures import PrefectFuture, wait
from prefect.input import RunInput
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from models.answers import Choices, with_choices
from models.steps import registry
from models.steps.step import Asked
from tasks.policies import CHECK, StepOutcome
from tasks.portfolio import refresh_timeline
from tasks.prefect_compat import form_described
from tasks.runs import relabel_open_runs
from tasks.steps import (
    apply_task,
    forget_answers,
    forget_attempt,
    ledger_changed,
    ledger_steps,
    read_form,
    refuse_step,
)

F = TypeVar("F", bound=BaseModel)


def form_with(
    form: type[F], *, description: str, choices: Choices | None = None, **defaults: Any
) -> type[F]:
    """The form as Prefect asks it: its choices, a Markdown description and pre-filled answers.

    `RunInput.with_initial_data` rebuilds pre-filled fields from their annotation alone and so
    drops their descriptions and constraints (prefect 3.9.1); this keeps every field's info.
    The forms are plain pydantic models (models/steps/); this makes each a `RunInput`.
    """
    form = with_choices(form, choices or {})
    if not issubclass(form, RunInput):
        form = pydantic.create_model(form.__name__, __base__=(RunInput, form))  # type: ignore[call-overload,arg-type]
    fields: dict[str, Any] = {}
    for name, value in defaults.items():
        original = form.model_fields[name]
        # The UI gets the default through the JSON schema, so give it in its JSON form; an
        # answer that leaves the field out gets it validated back into the field's type.
        default = to_jsonable_python(value)
        fields[name] = (
            original.annotation,
            FieldInfo.merge_field_infos(original, default=default, validate_default=True),
        )
    model = pydantic.create_model(form.__name__, __base__=form, **fields)  # type: ignore[call-overload]
    return form_described(model, description)  # type: ignore[arg-type,return-value]


def _with_refusal(description: str, reason: str | None, attempt: int) -> str:
    if reason is None:
        return description
    return (
        f"> **The last answer was not accepted** (attempt {attempt}); nothing was saved.\n"
        f"> {reason}\n\n{description}"
    )


def ask(name: str, *, step_key: str, asked: Asked) -> dict[str, Any]:
    """Ask a coordinator step `name` (models/steps/) until an answer is accepted; returns the
    ids it wrote.

    Each attempt suspends under its own key (`<step key>-<attempt>`), so the replay after a
    resume meets each earlier suspension again and gets its answer back from Prefect. An
    accepted step is answered from caseconf's ledger instead, and its forms are deleted from
    Prefect. The form (its choices read now) is read only for a step the ledger does not answer.
    """
    known = ledger_steps(step_key)
    done = known.answered.get(step_key)
    if done is not None:
        if step_key not in known.forgotten:
            forget_answers(step_key)
        return done
    step = registry.step(name)
    reasons = list(known.refused.get(step_key, []))
    attempt = len(reasons)
    form = read_form(name, asked)
    while True:
        text = _with_refusal(form.description, reasons[-1] if reasons else None, attempt)
        if form.notice and not reasons:
            text = f"> **Not accepted as given:** {form.notice}\n\n{text}"
        model = form_with(step.form, description=text, choices=form.choices, **form.defaults)
        try:
            answer = suspend_flow_run(wait_for_input=model, key=f"{step_key}-{attempt}")
        except pydantic.ValidationError as error:
            reason = _validation_reason(error)
            refuse_step(step_key, attempt, reason)
            outcome = StepOutcome(refusal=reason)
        else:
            outcome = apply_task(name)(name, step_key, attempt, asked, answer)
        ledger_changed()
        if outcome.result is not None:
            _accepted(step_key, asked)
            return outcome.result
        # The refused answer is never read again (the next attempt has its own key): it leaves
        # Prefect now, typed text and all, not when the step is finally accepted.
        forget_attempt(step_key, attempt)
        get_run_logger().warning("Step %s attempt %d was refused; asking again.", step_key, attempt)
        reasons.append(outcome.refusal or "refused")
        attempt += 1


def _accepted(step_key: str, asked: Asked) -> None:
    """The answer's effects are committed: the step's forms leave Prefect while the case's
    timeline and its runs' tags are refreshed (a lead just confirmed reaches the `lead:` tag);
    all Prefect API calls, side by side. A replay, which answers from the ledger, does none."""
    views: list[PrefectFuture[Any]] = []
    if asked.case_id is not None:
        # Never from cache: the same case id asks again after each step.
        retag = relabel_open_runs.with_options(cache_policy=CHECK, persist_result=False)
        views = [refresh_timeline.submit(step_key), retag.submit(asked.case_id)]
    forget_answers(step_key)
    if views:
        wait(views)
        # Views: failing to refresh them must not fail the case's run.
        if not all(future.state.is_completed() for future in views):
            get_run_logger().warning("%s: timeline or tags not refreshed.", step_key)


def _validation_reason(error: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()
    )
