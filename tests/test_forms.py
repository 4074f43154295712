"""Every form the UI renders: a description on every field (pre-filled ones included), no typed
value in errors, and a JSON schema snapshot so a change to a form is a reviewed change."""

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest
from prefect.input import RunInput
from prefect.input.run_input import create_v2_schema

from flows.steps import form_with
from models.steps import registry
from models.steps.decision import Decision
from models.steps.information import Information
from models.steps.parameters import Closure
from models.steps.preparation import Preparation
from models.steps.referral import Referral, ReferralDetails
from models.steps.stakeholders import Stakeholders
from tasks.prefect_compat import form_description

#: Every step's form, once (the security re-selection asks the stakeholders form again).
ALL_FORMS = tuple(dict.fromkeys(step.form for step in registry.BUILT_IN))

SNAPSHOT = Path(__file__).parent / "snapshots" / "forms.json"

# The pre-filled values the steps give (see models/steps/), fixed here so the snapshot is stable.
PREFILLED: dict[str, dict[str, Any]] = {
    "Preparation": {
        "conference_type": "security",
        "time_zone": "Europe/Vienna",
        "starts_at": datetime(2027, 1, 12, 10, 0),
    },
    "Stakeholders": {
        "intermediary": "jva-wien",
        "representatives": [
            {"agency": "dsn", "representative": "dsn-1"},
            {"agency": "jva-wien", "representative": None},
        ],
    },
    "Decision": {"next_review_on": date(2027, 4, 6)},
}


REPS = [("dsn-1", "for dsn"), ("jva-wien-1", "for jva-wien"), ("neustart-wien-1", "for neustart")]
ACTING = {"acting_representative": REPS}
# The choices the steps offer when asked (see models/steps/), fixed here likewise.
CHOICES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "ReferralDetails": {
        **ACTING,
        "referring_agency": [("neustart-wien", "NEUSTART Wien"), ("dsn", "DSN")],
        "profile": [("austria-neustart", "austria-neustart"), ("generic", "generic")],
        "stage": [("pre_trial", "pre_trial"), ("custody", "custody")],
    },
    "Stakeholders": {
        **ACTING,
        "add": [("lka-wien", "LKA Wien")],
        "remove": [("jva-wien", "Justizanstalt Wien")],
        "intermediary": [("dsn", "DSN"), ("jva-wien", "Justizanstalt Wien")],
        "representatives.agency": [("dsn", "DSN"), ("jva-wien", "Justizanstalt Wien")],
        "representatives.representative": REPS[:2],
    },
    "Information": {
        **ACTING,
        "contributions.agency": [("dsn", "DSN"), ("jva-wien", "Justizanstalt Wien")],
        "contributions.classification": [("professional", "professional"), ("shared", "shared")],
    },
    "Decision": {
        **ACTING,
        "actions.owner_agency": [("dsn", "DSN"), ("jva-wien", "Justizanstalt Wien")],
        "actions.classification": [("professional", "professional"), ("shared", "shared")],
        "plan_decisions.classification": [("professional", "professional"), ("shared", "shared")],
    },
}


def rendered(form: type) -> dict[str, Any]:
    """The schema Prefect stores for the UI when the flow suspends with this form."""
    model = form_with(
        form,
        description="test",
        choices=CHOICES.get(form.__name__, ACTING),
        **PREFILLED.get(form.__name__, {}),
    )
    return dict(create_v2_schema(form.__name__, model_base=model))


def undescribed(schema: dict[str, Any]) -> list[str]:
    missing = []
    for name, definition in [
        ("form", schema),
        *schema.get("definitions", {}).items(),
        *schema.get("$defs", {}).items(),
    ]:
        for field, spec in definition.get("properties", {}).items():
            if not spec.get("description"):
                missing.append(f"{name}.{field}")
    return missing


@pytest.mark.parametrize("form", ALL_FORMS, ids=lambda f: f.__name__)
def test_every_field_of_every_form_is_described_and_hides_input_in_errors(form):
    assert undescribed(rendered(form)) == []
    assert form.model_config.get("hide_input_in_errors") is True


def test_prefilled_fields_keep_their_description_constraints_and_default():
    schema = rendered(Preparation)["properties"]
    assert schema["time_zone"]["default"] == "Europe/Vienna"
    assert schema["time_zone"]["maxLength"] == 64 and schema["time_zone"]["description"]
    assert schema["starts_at"]["default"] == "2027-01-12T10:00:00"
    assert schema["conference_type"]["default"] == "security"
    # The very problem form_with exists for: prefect's own pre-fill drops the description.
    as_run_input = RunInput.subclass_from_base_model_type(Preparation)
    dropped = as_run_input.with_initial_data(time_zone="Europe/Vienna").model_json_schema()
    assert "description" not in dropped["properties"]["time_zone"]


def test_parameter_models_are_described_and_hide_input():
    for model in (Referral, Closure):
        assert undescribed(model.model_json_schema()) == []
        assert model.model_config.get("hide_input_in_errors") is True


def test_a_refused_value_never_appears_in_the_validation_error():
    typed = "Mustermann Max"
    with pytest.raises(pydantic.ValidationError) as caught:
        ReferralDetails(file_number=typed, acting_representative="neustart-wien-1")
    assert typed not in str(caught.value)
    with pytest.raises(pydantic.ValidationError) as caught:
        Stakeholders(add=[], reason=typed * 50, acting_representative="x")
    assert typed not in str(caught.value)


def test_form_schemas_match_the_snapshot():
    current = {form.__name__: rendered(form) for form in ALL_FORMS}
    current["Referral (parameters)"] = Referral.model_json_schema()
    current["Closure (parameters)"] = Closure.model_json_schema()
    if os.environ.get("CASECONF_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert json.loads(SNAPSHOT.read_text()) == current, (
        "a form changed: review the change, then run with CASECONF_UPDATE_SNAPSHOTS=1"
    )


def test_a_prefilled_answer_left_out_arrives_in_its_own_type() -> None:
    """The UI gets defaults as JSON; an answer that omits a pre-filled field must still get a
    date, not the date's text (the decision compares it with today)."""
    form = form_with(Decision, description="test", next_review_on=date(2027, 4, 6))
    answer = form.model_validate({"acting_representative": "neustart-wien-1"})
    assert answer.next_review_on == date(2027, 4, 6)


def test_forms_are_plain_models_that_prefect_asks_as_run_inputs():
    """The forms know nothing of Prefect (models/steps/); form_with makes each a RunInput."""
    for form in ALL_FORMS:
        assert not issubclass(form, RunInput)
        asked = form_with(form, description="test")
        assert issubclass(asked, RunInput) and issubclass(asked, form)
        assert form_description(asked) == "test"


def test_choices_become_enums_and_keep_descriptions():
    schema = rendered(Stakeholders)
    props = schema["properties"]
    assert props["add"]["items"]["enum"] == ["lka-wien"]
    assert props["remove"]["items"]["enum"] == ["jva-wien"]
    assert "lka-wien` LKA Wien" in props["add"]["description"]
    assert props["acting_representative"]["enum"] == ["dsn-1", "jva-wien-1", "neustart-wien-1"]
    assert props["acting_representative"]["description"].startswith("Your representative code")
    entry = schema["definitions"]["RepresentativeEntry"]["properties"]
    assert entry["agency"]["enum"] == ["dsn", "jva-wien"]
    info = rendered(Information)["definitions"]["InformationEntry"]["properties"]
    assert info["classification"]["enum"] == ["professional", "shared"]  # not restricted
    assert info["agency"]["enum"] == ["dsn", "jva-wien"]
    referral = rendered(ReferralDetails)["properties"]
    assert referral["profile"]["enum"] == ["austria-neustart", "generic"]
    assert "anyOf" not in referral["profile"]  # no empty toggle


def test_a_value_outside_the_choices_is_refused_naming_the_field():
    form = form_with(Stakeholders, description="test", choices=CHOICES["Stakeholders"])
    with pytest.raises(pydantic.ValidationError) as caught:
        form.model_validate({"add": ["no-such-agency"], "acting_representative": "dsn-1"})
    assert caught.value.errors()[0]["loc"] == ("add", 0)
    assert "no-such-agency" not in str(caught.value)
    nothing = form_with(Stakeholders, description="test", choices={**ACTING, "remove": []})
    with pytest.raises(pydantic.ValidationError):
        nothing.model_validate({"remove": ["jva-wien"], "acting_representative": "dsn-1"})
