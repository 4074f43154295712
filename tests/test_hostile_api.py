"""Hostile answers through the real API: resume_flow_run with run_input against a waiting run.

The server checks each answer against the form's schema and refuses, naming the field, what
breaks it: the run keeps waiting at the same attempt. An answer the schema allows but a rule
refuses is asked again under the next attempt, the field named in the form's description.
Nothing typed reaches the run's logs, its name, its artifacts or a message (the place of the
conference excepted: messages carry it by design).
"""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from sqlmodel import select

from models.record.database import RecordSession, get_engine
from models.record.tables import Case, Notification
from tests.fuzz import HOSTILE
from tests.prefect_harness import Walk, read_run, text_of

pytestmark = pytest.mark.flow

REP = "neustart-wien-1"
VIENNA = ZoneInfo("Europe/Vienna")
#: Typed values that must not come back anywhere (long enough to be recognised).
SECRETS = [s for s in HOSTILE if len(s.strip()) >= 6]


def test_hostile_answers_through_the_api_are_refused_with_the_field_named(
    serving, database, mail
) -> None:
    began = datetime.now(VIENNA)
    walk = Walk.refer("neustart-wien", stage="custody")
    walk.waits_at("referral")

    # What breaks the schema: refused by the server, naming the field; the run keeps waiting.
    schema_breaking = [
        ({"file_number": "<script>alert('x')</script>"}, "file_number"),
        ({"file_number": "a\x00b"}, "file_number"),
        ({"file_number": "A" * 70}, "file_number"),
        ({"file_number": "F-1", "needs": "housing"}, "needs"),
        ({"file_number": "F-1", "needs": ["'; DROP TABLE case; --"]}, "needs"),
        ({"file_number": "F-1", "client_name": "Mustermann, Max"}, "client_name"),
        ({"needs": []}, "file_number"),
        (
            {"file_number": "F-1", "acting_representative": "\u202eevil\u202c"},
            "acting_representative",
        ),
    ]
    for payload, field in schema_breaking:
        payload.setdefault("acting_representative", REP)
        with pytest.raises(RuntimeError, match=field):
            walk.answer(**payload)
        walk.waits_at("referral", attempt=0)

    # A representative not among the form's choices: the server refuses it, naming the field;
    # nothing saved. (A rule's refusal is the preparation's start in the past, below.)
    with pytest.raises(RuntimeError, match="acting_representative"):
        walk.answer(file_number="HOSTILE-1", needs=[], acting_representative="no-such-person-1")
    walk.waits_at("referral", attempt=0)
    with RecordSession(get_engine(database)) as s:
        assert s.exec(select(Case).where(Case.referral_file_number == "HOSTILE-1")).all() == []

    walk.answer(file_number="HOSTILE-1", needs=["housing"], acting_representative=REP)
    run = walk.waits_at("preparation")
    reference = run.name
    # A place full of markup is no venue of the directory: the server refuses it, naming the field.
    place = "<img src=x onerror=alert(1)> **bold** '; DROP TABLE case; --"
    yesterday = datetime.combine(began.date() - timedelta(days=1), time(10))
    with pytest.raises(RuntimeError, match="location"):
        walk.answer(
            conference_type="security",
            starts_at=yesterday.isoformat(),
            time_zone="Europe/Vienna",
            location=place,
            acting_representative=REP,
        )
    walk.waits_at("preparation", attempt=0)
    # A start in the past: the rule refuses it and the form asks again.
    walk.answer(
        conference_type="security",
        starts_at=yesterday.isoformat(),
        time_zone="Europe/Vienna",
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    walk.waits_at("preparation", attempt=1)
    description = walk.description()
    assert "starts_at" in description and place not in description
    with pytest.raises(RuntimeError, match="time_zone"):
        walk.answer(
            conference_type="security",
            starts_at=yesterday.isoformat(),
            time_zone="x" * 100,
            location="jva-wien-room-2",
            acting_representative=REP,
        )
    walk.waits_at("preparation", attempt=1)

    # Nothing typed reached the run's name, tags, logs or artifacts, nor a message.
    run = read_run(walk.run_id)
    typed = [*SECRETS, "no-such-person-1", place, "HOSTILE-1"]
    assert run.name == reference and reference.startswith("CASE-")
    assert not any(t in tag for tag in run.tags for t in typed)
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[walk.run_id]))
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[walk.run_id]))
        )
    said = "\n".join(
        [log.message for log in logs]
        + [str(a.data) + str(a.description) for a in artifacts]
        + [str(run.state.message if run.state else "")]
    )
    assert logs, "the run logged nothing: the check would be vacuous"
    leaked = [t for t in typed if t in said]
    assert leaked == []
    with RecordSession(get_engine(database)) as s:
        case = s.exec(select(Case).where(Case.reference == reference)).one()
        assert s.exec(select(Notification).where(Notification.case_id == case.id)).all() == []
    for message in mail.messages():
        if reference in str(message["Subject"]):
            assert not [t for t in typed if t in text_of(message)]
