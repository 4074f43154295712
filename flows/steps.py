"""A human step: suspend for a form, apply the answer, ask again with the reason if it is refused."""

from collections.abc import Callable
from typing import Any, TypeVar

import pydantic
from prefect import get_run_logger, suspend_flow_run
from prefect.input import RunInput
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from models.steps.forms import Choices, with_choices
from tasks.policies import StepOutcome
from tasks.steps import forget_answers, forget_attempt, ledger_changed, ledger_steps, refuse_step

F = TypeVar("F", bound=BaseModel)


def form_with(
    form: type[F], *, description: str, choices: Choices | None = None, **defaults: Any
) -> type[F]:
    """The form as Prefect asks it: its choices, a Markdown description and pre-filled answers.

    `RunInput.with_initial_data` rebuilds pre-filled fields from their annotation alone and so
    drops their descriptions and constraints (prefect 3.9.1); this keeps every field's info.
    The forms are plain pydantic models (models/steps/forms.py); this makes each a `RunInput`.
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
    model._description = description  # type: ignore[attr-defined]
    return model  # type: ignore[no-any-return,return-value]


def _with_refusal(description: str, reason: str | None, attempt: int) -> str:
    if reason is None:
        return description
    return (
        f"> **The last answer was not accepted** (attempt {attempt}); nothing was saved.\n"
        f"> {reason}\n\n{description}"
    )


def ask(
    *,
    step_key: str,
    form: type[F],
    description: str,
    apply: Callable[[F, int], StepOutcome],
    defaults: dict[str, Any] | None = None,
    choices: Choices | Callable[[], Choices] | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """Ask a coordinator for `form` until an answer is accepted; returns the ids it wrote.

    `choices` restrict text fields to codes (or a callable that reads them, called only when
    the form is asked, never for a step the ledger answers);
    `notice` goes above the description (a problem found before the first attempt).

    Each attempt suspends under its own key (`<step>-<attempt>`), so the replay after a resume
    meets each earlier suspension again and gets its answer back from Prefect. An accepted step
    is answered from caseconf's ledger instead, and its forms are deleted from Prefect.
    """
    known = ledger_steps(step_key)
    done = known.answered.get(step_key)
    if done is not None:
        if step_key not in known.forgotten:
            forget_answers(step_key)
        return done
    reasons = list(known.refused.get(step_key, []))
    attempt = len(reasons)
    offered = choices() if callable(choices) else choices
    while True:
        reason = reasons[-1] if reasons else None
        text = _with_refusal(description, reason, attempt)
        if notice and not reasons:
            text = f"> **Not accepted as given:** {notice}\n\n{text}"
        model = form_with(
            form,
            description=text,
            choices=offered,
            **(defaults or {}),
        )
        try:
            answer = suspend_flow_run(wait_for_input=model, key=f"{step_key}-{attempt}")
        except pydantic.ValidationError as error:
            reason = _validation_reason(error)
            refuse_step(step_key, attempt, reason)
            outcome = StepOutcome(refusal=reason)
        else:
            outcome = apply(answer, attempt)
        ledger_changed()
        if outcome.result is not None:
            forget_answers(step_key)
            return outcome.result
        # The refused answer is never read again (the next attempt has its own key): it leaves
        # Prefect now, typed text and all, not when the step is finally accepted.
        forget_attempt(step_key, attempt)
        get_run_logger().warning("Step %s attempt %d was refused; asking again.", step_key, attempt)
        reasons.append(outcome.refusal or "refused")
        attempt += 1


def _validation_reason(error: pydantic.ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in error.errors()
    )
