"""A coordinator who knows only their own agency's code and their own representative code walks a
case through the real API, answering every form from its JSON schema alone; and a canary: after
a walk with refusals, Prefect's database holds none of the refused answers' typed text."""

import sqlite3
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment

from tasks.prefect_compat import form_input_prefix
from tests.prefect_harness import FINAL, WAITING, Walk, read_run, wait_for

pytestmark = pytest.mark.flow

AGENCY = "neustart-wien"  # the coordinator's own agency
REP = "neustart-wien-1"  # and their own representative code
VIENNA = ZoneInfo("Europe/Vienna")


def resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = spec.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return resolve(schema, {**(schema.get("definitions") or schema.get("$defs", {}))[name]})
    return spec


def value_for(schema: dict[str, Any], name: str, spec: dict[str, Any], now: datetime) -> Any:
    """What a person answering from the form alone would give a field that needs a value."""
    spec = resolve(schema, spec)
    if name == "acting_representative":
        return REP
    if name == "referring_agency":
        return AGENCY
    if "default" in spec:
        return spec["default"]
    if "enum" in spec:
        return spec["enum"][0]
    kind = spec.get("type")
    if kind == "string" and spec.get("format") == "date":
        return (now.date() + timedelta(days=30)).isoformat()
    if kind == "string" and spec.get("format") == "date-time":
        return (
            datetime.combine(now.date() + timedelta(days=10), datetime.min.time())
            .replace(hour=10)
            .isoformat()
        )
    if kind == "string":
        return f"SW-{int(time.time())}" if spec.get("pattern") else "Agreed at the conference"
    if kind == "integer":
        return spec.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [value_for(schema, "", spec["items"], now) for _ in range(spec.get("minItems", 0))]
    if kind == "object":
        return answer_object(schema, spec, now)
    raise AssertionError(f"{name}: the walker cannot answer {spec}")


def answer_object(
    schema: dict[str, Any], spec: dict[str, Any], now: datetime, given: Any = None
) -> dict[str, Any]:
    """Required fields and pre-filled ones; a list of free-text entries gets one entry; an
    entry pre-filled in part gets its required fields completed."""
    answer: dict[str, Any] = dict(given or {})
    for name, field in spec.get("properties", {}).items():
        field = resolve(schema, field)
        items = resolve(schema, field.get("items", {})) if field.get("type") == "array" else {}
        if name in answer:
            continue
        if name in spec.get("required", []) or "default" in field:
            value = value_for(schema, name, field, now)
            if isinstance(value, list) and items.get("type") == "object":
                value = [answer_object(schema, items, now, entry) for entry in value]
            answer[name] = value
        free_text = items.get("type") == "string" and "enum" not in items
        if free_text and field.get("maxItems") != 0 and not answer.get(name):
            answer[name] = ["Agreed at the conference"]
    return {k: v for k, v in answer.items() if v is not None}


def test_a_case_walks_to_its_review_answered_from_the_forms_schemas_alone(serving, database):
    now = datetime.now(VIENNA)  # once for the whole walk
    run = run_deployment(
        "case-lifecycle/referral", parameters={"referral": {"referring_agency": AGENCY}}, timeout=0
    )
    walk = Walk(run.id)
    steps: list[str] = []
    while True:
        state = walk.settle(timeout=180)
        assert state.state is not None
        if state.state.type in FINAL:
            break
        key = walk.pause_key()
        step = key.rsplit("-", 1)[0]
        assert key.endswith("-0"), f"refused at {key}: {walk.description()}"
        steps.append(step.split("-c1-")[-1] if "-c1-" in step else "referral")
        schema = walk.schema()
        # Every text field that names an agency or a representative is a choice.
        for name, field in schema["properties"].items():
            field = resolve(schema, field)
            if name in ("acting_representative", "referring_agency", "profile", "intermediary"):
                assert "enum" in field or "enum" in field.get("anyOf", [{}])[0], (step, name)
        walk.answer(**answer_object(schema, schema, now))
        assert len(steps) < 12, steps
    assert read_run(walk.run_id).state.type == StateType.COMPLETED
    assert steps[:2] == ["referral", "preparation"] and steps[-1] == "decision"
    assert "information" in steps and "stakeholders" in steps


def _prefect_rows_containing(database_path: str, needle: str) -> list[str]:
    """Every row of every table of Prefect's database whose text holds `needle`."""
    found = []
    with sqlite3.connect(database_path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                if any(needle in str(v) for v in row if v is not None):
                    found.append(table)
    return found


def test_refused_answers_leave_prefect_at_once(serving, database, prefect_server):
    """A refused answer's typed text is deleted from Prefect as soon as the refusal is recorded."""
    now = datetime.now(VIENNA)
    canaries = [f"CANARY-{int(time.time())}-{n}/Zone" for n in range(2)]
    prefect_db = str(prefect_server.home / "prefect.db")
    assert (prefect_server.home / "prefect.db").exists()
    walk = Walk.refer(AGENCY, stage="custody")
    walk.waits_at("referral")
    walk.answer(file_number=f"CAN-{int(time.time())}", acting_representative=REP)
    walk.waits_at("preparation")
    # The place is a choice now: the canaries go where a person still types, the time zone.
    starts_at = (now + timedelta(days=10)).replace(tzinfo=None).isoformat(timespec="minutes")
    for attempt, canary in enumerate(canaries):
        walk.answer(
            conference_type="security",
            starts_at=starts_at,
            time_zone=canary,
            location="jva-wien-room-2",
            acting_representative=REP,
        )
        walk.waits_at("preparation", attempt=attempt + 1)
        assert "time_zone" in walk.description()
        # Refused and asked again: the refused answer is gone already, not at acceptance. (The
        # search finds what is there: the waiting form's own description.)
        assert "flow_run_input" in _prefect_rows_containing(prefect_db, "was not accepted")
        assert _prefect_rows_containing(prefect_db, canary) == []
    walk.answer(
        conference_type="security",
        starts_at=(now + timedelta(days=10)).replace(tzinfo=None).isoformat(timespec="minutes"),
        time_zone="Europe/Vienna",
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    walk.waits_at("stakeholders")
    with get_client(sync_client=True) as client:
        kept = client.filter_flow_run_input(
            walk.run_id, key_prefix=form_input_prefix(""), limit=50, exclude_keys=set()
        )
    assert all("preparation" not in k.key for k in kept), [k.key for k in kept]
    for canary in canaries:
        assert _prefect_rows_containing(prefect_db, canary) == [], canary
    assert wait_for(walk.run_id, WAITING).state.type == StateType.PAUSED
