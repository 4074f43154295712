"""Hostile and careless answers to every form and deployment parameter, as plain functions.

Answers are drawn from the stored form schemas (tests/snapshots/forms.json: a changed form is
fuzzed as it now is) and the parameter models' schemas, then mutated with hand-picked strings,
wrong types, missing and extra fields (tests/fuzz.py). Each is judged as a resumed run meets it:
the server's schema check, the form's model, then the rule that applies it. Every answer is
accepted or refused with a field named; caseconf's refusals never repeat what was typed; no
caseconf code raises anything but a refusal; a refused rule leaves nothing written.

`CASECONF_FUZZ_EXAMPLES` sets the answers per form (`make faults` draws more);
`CASECONF_FAULTS_REPORT` names a JSON-lines file that receives the counts.
"""

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

import models.steps.parameters as parameters
from models.errors import Refusal
from models.record.tables import ActionItem, Agency, AuditEvent, Case, Conference, InformationItem
from models.rules import actions, cases, conference
from models.steps import registry
from models.steps.referral import Referral
from models.vocabulary import ActionStatus, ConferenceKind, ConferenceType, Phase, Stage
from tests.fuzz import (
    Verdict,
    answers,
    judge,
    leaks,
    load_schemas,
    names_a_field,
    refused_by_rule,
)
from tests.test_conference_rules import new_case, new_conference

#: Every form a coordinator fills in, by name: each step's, and the deployments' parameters.
forms = SimpleNamespace(
    **{step.form.__name__: step.form for step in registry.BUILT_IN},
    **{
        name: model
        for name, model in vars(parameters).items()
        if isinstance(model, type) and issubclass(model, pydantic.BaseModel)
    },
    Referral=Referral,
)
EXAMPLES = int(os.environ.get("CASECONF_FUZZ_EXAMPLES", "15"))
NOW = datetime(2034, 1, 15, 8, 0, tzinfo=UTC)
FORMS = load_schemas()
#: Deployment parameters the snapshot does not hold: their schema is the model's own.
PARAMETERS = {
    name: getattr(forms, name).model_json_schema()
    for name in (
        "Reschedule",
        "Handover",
        "ConsentWithdrawal",
        "StageMove",
        "Transfer",
        "ReviewChange",
    )
    if hasattr(forms, name)
}
TALLY: Counter[str] = Counter()
fuzzing = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    path = os.environ.get("CASECONF_FAULTS_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"fuzz": dict(TALLY)}) + "\n")


def check(verdict: Verdict, schema: dict[str, Any], payload: Any) -> None:
    TALLY["answers"] += 1
    TALLY[verdict.stage] += 1
    if verdict.stage == "accepted":
        return
    clear = names_a_field(verdict, schema, payload)
    leaked = leaks(verdict, payload, schema)
    TALLY["unclear"] += not clear
    TALLY["leaks"] += bool(leaked)
    assert clear, f"{verdict.stage} refusal names no field: {verdict.reason!r}"
    assert not leaked, f"{verdict.stage} refusal repeats what was typed: {verdict.reason!r}"


@pytest.mark.parametrize("name", sorted(FORMS) + sorted(PARAMETERS))
def test_every_answer_is_accepted_or_refused_with_its_field_named(name: str) -> None:
    schema = FORMS.get(name) or PARAMETERS[name]
    form: type[pydantic.BaseModel] = getattr(forms, name)

    @fuzzing
    @given(payload=answers(schema))
    def one(payload: dict[str, Any]) -> None:
        check(judge(schema, form, payload), schema, payload)

    one()


# --- through the rules that apply the answers -------------------------------------------------


@contextmanager
def example(session: Session) -> Iterator[None]:
    """One example's set-up and answer, rolled back before the next example."""
    outer = session.begin_nested()
    try:
        yield
    finally:
        outer.rollback()


def counts(session: Session) -> tuple[int, ...]:
    tables = (Case, Conference, InformationItem, ActionItem, AuditEvent)
    return tuple(session.exec(select(func.count()).select_from(t)).one() for t in tables)


def apply_fuzzed(
    session: Session, name: str, apply: Callable[[Any], object], data: st.DataObject
) -> None:
    """Draw an answer to form `name`; where the schema and model accept it, apply it in a
    savepoint: accepted, or refused naming a field with nothing written, and nothing else."""
    schema = FORMS[name]
    payload = data.draw(answers(schema))
    verdict = judge(schema, getattr(forms, name), payload)
    if verdict.stage != "accepted":
        check(verdict, schema, payload)
        return
    before = counts(session)
    nested = session.begin_nested()
    try:
        cases.acting_representative(session, code=verdict.answer.acting_representative)
        apply(verdict.answer)
    except Refusal as refusal:
        nested.rollback()
        assert refusal.problems and all(p.field for p in refusal.problems)
        check(refused_by_rule(refusal), schema, payload)
        assert counts(session) == before  # the case stays where it was
        return
    nested.rollback()
    check(verdict, schema, payload)


@pytest.mark.database
@fuzzing
@given(data=st.data())
def test_referral_details_are_applied_or_refused(session: Session, data: st.DataObject) -> None:
    with example(session):

        def apply(answer: forms.ReferralDetails) -> object:
            return cases.refer_case(
                session,
                referring_agency="neustart-wien",
                file_number=answer.file_number.strip(),
                stage=Stage.custody,
                needs=answer.needs,
                profile="generic",
                acting_representative_code=answer.acting_representative,
                reference_prefix="FUZZ",
                flow_run_id=None,
                now=NOW,
            )

        apply_fuzzed(session, "ReferralDetails", apply, data)


@pytest.mark.database
@fuzzing
@given(data=st.data())
def test_preparations_are_applied_or_refused(session: Session, data: st.DataObject) -> None:
    with example(session):
        case = new_case(session, "FUZZ-PREP")

        def apply(answer: forms.Preparation) -> object:
            return conference.open_conference(
                session,
                case=case,
                kind=ConferenceKind.first,
                conference_type=answer.conference_type,
                starts_at=conference.aware_start(answer.starts_at, answer.time_zone),
                time_zone=answer.time_zone,
                location=answer.location.strip(),
                now=NOW,
            )

        apply_fuzzed(session, "Preparation", apply, data)


@pytest.mark.database
@fuzzing
@given(data=st.data())
def test_information_is_applied_or_refused(session: Session, data: st.DataObject) -> None:
    with example(session):
        held = new_conference(session, ConferenceType.security)

        def apply(answer: forms.Information) -> object:
            return conference.record_information(
                session,
                conference=held,
                entries=answer.contributions,
                next_phase=Phase.decision,
                now=NOW,
            )

        apply_fuzzed(session, "Information", apply, data)


@pytest.mark.database
@fuzzing
@given(data=st.data())
def test_action_reviews_are_applied_or_refused(session: Session, data: st.DataObject) -> None:
    with example(session):
        held = new_conference(session, ConferenceType.security)
        for number in range(2):
            session.add(
                ActionItem(
                    case_id=held.case_id,
                    conference_id=held.id,  # type: ignore[arg-type]
                    owner_agency_id=session.exec(
                        select(Agency.id).where(Agency.code == "jva-wien")
                    ).one(),
                    description=f"Action {number}",
                    due_on=NOW.date() + timedelta(days=10),
                    status=ActionStatus.open,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
        session.flush()

        def apply(answer: forms.ActionReview) -> object:
            return actions.review_open_actions(
                session, case_id=held.case_id, updates=answer.updates, today=NOW.date(), now=NOW
            )

        apply_fuzzed(session, "ActionReview", apply, data)
