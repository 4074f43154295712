"""Whole cases walked through a real Prefect server, as a coordinator does in the UI.

Each resume costs seconds, so walks are few and each asserts a lot: database rows and run
states at every step. Rules themselves are tested as plain functions elsewhere.
"""

import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from sqlmodel import Session, col, select

from deployments.mailcatcher import ChatCatcher
from models.record.database import RecordSession, get_engine
from models.record.ledger import FORGOTTEN
from models.record.tables import (
    ActionItem,
    Agency,
    AuditEvent,
    Case,
    Channel,
    Conference,
    Effect,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Review,
)
from models.vocabulary import Phase
from tasks.prefect_compat import form_input_prefix
from tests.prefect_harness import (
    FINAL,
    ROOT,
    Walk,
    calendar_parts,
    read_run,
    text_of,
    wait_for,
)

pytestmark = pytest.mark.flow

REP = "neustart-wien-1"


VIENNA = ZoneInfo("Europe/Vienna")
# When the running test began, in Vienna where its conferences meet: read once per test (by
# `_test_began`), never again mid-walk, so a walk that runs past midnight keeps its dates.
BEGAN = {"now": datetime.now(VIENNA)}


@pytest.fixture(autouse=True)
def _test_began() -> None:
    BEGAN["now"] = datetime.now(VIENNA)


def in_days(days: int) -> str:
    return (BEGAN["now"].date() + timedelta(days=days)).isoformat()


def starts_in(days: int) -> str:
    return datetime.combine(BEGAN["now"].date() + timedelta(days=days), time(10)).isoformat()


def db(database: str) -> Session:
    return RecordSession(get_engine(database), expire_on_commit=False)


def case_of(database: str, run_id: object) -> Case:
    with db(database) as s:
        case = s.exec(select(Case).where(Case.current_flow_run_id == str(run_id))).first()
        assert case is not None, "the referral created no case"
        return case


def rows(database: str, model: type, **where: object) -> list:
    with db(database) as s:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(s.exec(query))


@pytest.mark.database
def test_security_case_walks_from_referral_to_a_scheduled_review(serving, database, mail):
    walk = Walk.refer("neustart-wien", stage="custody")
    walk.waits_at("referral")
    assert "file number" in walk.description()
    walk.answer(file_number="W-2026/0001", needs=["mental_health"], acting_representative=REP)

    run = walk.waits_at("preparation")
    case = case_of(database, walk.run_id)
    assert case.reference.startswith("CASE-")
    assert run.name == case.reference
    assert {f"case:{case.reference}", "stage:custody"} <= set(run.tags)
    assert case.phase == Phase.preparation and case.referral_file_number == "W-2026/0001"
    # The file number reached caseconf's database; Prefect kept no copy of the answer.
    with get_client(sync_client=True) as client:
        kept = client.filter_flow_run_input(
            walk.run_id,
            key_prefix=form_input_prefix(f"{walk.run_id}-referral"),
            limit=50,
            exclude_keys=set(),
        )
    assert kept == []

    walk.answer(
        conference_type="security",
        starts_at=starts_in(10),
        time_zone="Europe/Vienna",
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    run = walk.waits_at("stakeholders")
    assert "type:security" in run.tags
    proposal = walk.description()
    assert "| `dsn` | lead |" in proposal and "need mental_health" in proposal
    [conference] = rows(database, Conference, case_id=case.id)
    assert conference.conference_type == "security"
    assert conference.starts_at.astimezone(VIENNA).hour == 10  # 08:00 or 09:00 UTC by season
    assert rows(database, Notification, case_id=case.id) == []  # nothing sent before confirmation

    walk.answer(acting_representative=REP)
    walk.waits_at("information")
    participants = rows(database, Participant, conference_id=conference.id)
    roles = sorted(str(p.role) for p in participants)
    assert "client" not in roles and "family" not in roles
    assert roles.count("lead") == 1
    invitations = rows(database, Notification, case_id=case.id, event="invitation")
    channels = {
        p.agency_id: len(rows(database, Channel, agency_id=p.agency_id)) for p in participants
    }
    assert len(invitations) == sum(channels.values())  # one per participant and channel

    walk.answer(
        contributions=[
            {
                "agency": "dsn",
                "classification": "restricted",
                "pointer": "DSN case system, entry 7",
            },
            {
                "agency": "jva-wien",
                "classification": "professional",
                "summary": "Attends the education programme.",
            },
        ],
        acting_representative=REP,
    )
    walk.waits_at("decision")
    items = rows(database, InformationItem, conference_id=conference.id)
    restricted = [i for i in items if i.classification == "restricted"]
    assert len(items) == 2 and restricted[0].summary is None and restricted[0].pointer

    # A business rule refuses this answer: the run asks again, nothing is written.
    # An owner that is not among the form's choices (not in this conference): the server
    # refuses it, naming the field, and the run keeps waiting at the same attempt.
    with pytest.raises(RuntimeError, match=r"actions\[0\]\.owner_agency"):
        walk.answer(
            decisions=["Continue mentoring"],
            actions=[
                {
                    "owner_agency": "ams-wien",
                    "description": "Arrange a course",
                    "due_on": in_days(30),
                }
            ],
            next_review_on=in_days(7),
            acting_representative=REP,
        )
    walk.waits_at("decision")
    walk.answer(
        decisions=["Continue mentoring"],
        actions=[{"owner_agency": "dsn", "description": "Arrange a course", "due_on": in_days(30)}],
        next_review_on=in_days(-1),
        acting_representative=REP,
    )
    walk.waits_at("decision", attempt=1)
    reason = walk.description()
    assert "next_review_on: must be after today" in reason
    assert rows(database, ActionItem, case_id=case.id) == []
    assert read_run(walk.run_id).state.type == StateType.PAUSED

    walk.answer(
        decisions=["Continue mentoring"],
        actions=[
            {"owner_agency": "jva-wien", "description": "Arrange a course", "due_on": in_days(30)}
        ],
        next_review_on=in_days(60),
        acting_representative=REP,
    )
    run = wait_for(walk.run_id, {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED})
    assert run.state.type == StateType.COMPLETED, run.state.message
    with db(database) as s:
        case = s.get(Case, case.id)
        assert case.phase == Phase.review_scheduled
        [action] = s.exec(select(ActionItem).where(ActionItem.case_id == case.id)).all()
        assert action.status == "open" and action.due_on == date.fromisoformat(in_days(30))
        assert (
            s.exec(select(PlanItem).where(PlanItem.conference_id == conference.id)).one().text
            == "Continue mentoring"
        )
        [review] = s.exec(select(Review).where(Review.case_id == case.id)).all()
        minutes = s.exec(
            select(Notification).where(
                Notification.case_id == case.id, Notification.event == "minutes"
            )
        ).all()
        assert len(minutes) == sum(channels.values())
        actions_logged = [
            e.action
            for e in s.exec(
                select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(col(AuditEvent.id))
            )
        ]
    assert actions_logged[0] == "case.referred" and "conference.decision" in actions_logged
    assert review.cycle == 2
    assert review.due_at.astimezone(VIENNA).date() == date.fromisoformat(in_days(60))
    scheduled = read_run(review.flow_run_id)
    assert scheduled.state.type == StateType.SCHEDULED
    assert scheduled.name == f"{case.reference} review 1"
    assert f"case:{case.reference}" in scheduled.tags
    assert scheduled.parameters == {"case_reference": case.reference, "cycle": 2}

    # Every email channel got its invitation exactly once, although the run replayed its steps
    # at every resume; each carries an iMIP REQUEST at 10:00 Vienna time.
    invited = [m for m in mail.messages() if case.reference in m["Subject"] and calendar_parts(m)]
    email_channels = [n for n in invitations if not n.channel.endswith("-chat")]
    assert sorted(m["X-RcptTo"] for m in invited) == sorted(
        f"{n.channel}@demo.invalid" for n in email_channels
    )
    for message in invited:
        [(method, calendar)] = calendar_parts(message)
        [event] = calendar.walk("VEVENT")
        assert method == "REQUEST" and event["SEQUENCE"] == 0
        assert (
            event.decoded("DTSTART").hour == 10
            and str(event.decoded("DTSTART").tzinfo) == "Europe/Vienna"
        )
    # The chat channel was down: recorded as failed, shown as an artifact, the case went on.
    with db(database) as s:
        failed = s.exec(
            select(Notification).where(
                Notification.case_id == case.id, Notification.status == "failed"
            )
        ).all()
    assert failed and all(n.channel == "neustart-wien-chat" for n in failed)
    assert all(n.last_error and "://" not in n.last_error for n in failed)
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[f"delivery-failures-{case.reference.lower()}"])
            )
        )
    assert artifacts and "neustart-wien-chat" in str(artifacts[0].data)

    # Once the channel works again, the re-send command delivers each failed message once (this
    # case's, and any an earlier test left failed on the same channel).
    with db(database) as s:
        all_failed = s.exec(select(Notification).where(Notification.status == "failed")).all()
    chat = ChatCatcher("127.0.0.1", mail.chat_port).start()
    try:
        for _ in range(2):
            subprocess.run(
                [sys.executable, "-m", "deployments", "resend"],
                env=serving.server.env(),
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
        assert len(chat.received) == len(all_failed)
        assert sum(case.reference.encode() in m for m in chat.received) == len(failed)
    finally:
        chat.stop()
    with db(database) as s:
        assert all(s.get(Notification, n.id).status == "sent" for n in failed)


CANARY = "Zq7Canary"  # typed into every free-text field below; must never reach Prefect
FILE_CANARY = "Fn8Canary-file"  # the referring agency's file number: only ever to that agency


def scan_prefect_for(canary: str, server_home, serve_log) -> list[str]:
    """Every place Prefect keeps data: its database (compacted, so deleted rows are gone too),
    persisted results and the serving process's log. Returns where the canary was found."""
    import sqlite3

    found = []
    source = sqlite3.connect(server_home / "prefect.db")
    copy = sqlite3.connect(server_home.parent / "prefect-scan.db")
    source.backup(copy)
    copy.execute("VACUUM")
    copy.close()
    source.close()
    if canary.encode() in (server_home.parent / "prefect-scan.db").read_bytes():
        found.append("prefect.db")
    for path in server_home.rglob("*"):
        skipped = {".db", ".db-wal", ".db-shm"}
        if path.is_file() and path.suffix not in skipped and canary.encode() in path.read_bytes():
            found.append(str(path))
    if canary in serve_log.read_text(errors="replace"):
        found.append("serve.log")
    return found


def test_social_network_case_with_consent_family_plan_and_item_by_item_decision(
    serving, database, prefect_server, mail
):
    walk = Walk.refer("neustart-wien", stage="pre_release")
    walk.waits_at("referral")
    walk.answer(file_number=FILE_CANARY, needs=["housing"], acting_representative=REP)
    walk.waits_at("preparation")
    case = case_of(database, walk.run_id)

    walk.answer(
        conference_type="social_network",
        starts_at=starts_in(12),
        time_zone="Europe/Vienna",
        location="neustart-wien-room-3",
        acting_representative=REP,
    )
    walk.waits_at("consent")
    assert rows(database, Notification, case_id=case.id) == []  # consent comes first
    walk.answer(
        client_consent="granted",
        family_involvement=True,
        expires_on=in_days(365),
        acting_representative=REP,
    )

    run = walk.waits_at("stakeholders")
    assert "type:social_network" in run.tags
    assert "client and family are invited" in walk.description()
    assert walk.schema()["properties"]["intermediary"]["default"] == "jva-wien"  # held in prison
    walk.answer(intermediary="jva-wien", acting_representative=REP)

    walk.waits_at("information")
    [conference] = rows(database, Conference, case_id=case.id)
    people = rows(database, Participant, conference_id=conference.id)
    by_role = {str(p.role): p for p in people}
    assert {"client", "family"} <= set(by_role)
    assert by_role["client"].agency_id is None and by_role["client"].intermediary_agency_id
    by_hand = rows(database, Notification, case_id=case.id, event="handover_request")
    assert sorted(str(n.recipient_role) for n in by_hand) == ["client", "family"]
    assert {n.recipient_agency_id for n in by_hand} == {by_role["client"].intermediary_agency_id}

    walk.answer(
        contributions=[
            {"agency": "neustart-wien", "classification": "shared", "summary": f"{CANARY} shared"},
            {"agency": "fsw-wohnen", "classification": "professional", "summary": f"{CANARY} prof"},
        ],
        acting_representative=REP,
    )
    walk.waits_at("family-only")
    assert "no professionals" in walk.description()
    walk.answer(
        plan_items=[f"{CANARY} plan one", f"{CANARY} plan two", f"{CANARY} plan three"],
        acting_representative=REP,
    )

    walk.waits_at("decision")
    assert f"2. {CANARY} plan two" in walk.description()
    walk.answer(
        plan_decisions=[
            {"item": 1, "outcome": "accepted", "reason": f"{CANARY} fits"},
            {
                "item": 2,
                "outcome": "amended",
                "amendment": f"{CANARY} amended",
                "reason": f"{CANARY} safer",
            },
            {"item": 3, "outcome": "rejected", "reason": f"{CANARY} conflicts with conditions"},
        ],
        actions=[
            {
                "owner_agency": "fsw-wohnen",
                "description": f"{CANARY} find housing",
                "due_on": in_days(20),
            }
        ],
        next_review_on=in_days(90),
        acting_representative=REP,
    )
    run = wait_for(walk.run_id, {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED})
    assert run.state.type == StateType.COMPLETED, run.state.message

    plan = {p.number: p for p in rows(database, PlanItem, conference_id=conference.id)}
    assert [str(plan[n].outcome) for n in (1, 2, 3)] == ["accepted", "amended", "rejected"]
    assert plan[2].amendment == f"{CANARY} amended" and plan[3].reason
    with db(database) as s:
        from models.rules.release import minutes_per_audience

        minutes = {
            m.role: m for m in minutes_per_audience(s, conference=s.get(Conference, conference.id))
        }
    shared = {
        i.id
        for i in rows(database, InformationItem, conference_id=conference.id)
        if i.classification == "shared"
    }
    assert set(minutes["client"].information_ids) == shared  # client and family get shared only
    assert len(minutes["lead"].information_ids) == 2

    # No personal value typed into any form ever reached Prefect.
    assert scan_prefect_for(CANARY, prefect_server.home, serving.log_path) == []
    assert case.reference not in CANARY  # the reference itself may appear, and does:
    assert scan_prefect_for(case.reference, prefect_server.home, serving.log_path) != []
    assert scan_prefect_for(FILE_CANARY, prefect_server.home, serving.log_path) == []

    # No message says anything typed into a form; the file number goes to its own agency only.
    messages = [m for m in mail.messages() if case.reference in m["Subject"]]
    assert messages
    for message in messages:
        text = text_of(message)
        assert CANARY not in text, message["Subject"]
        if FILE_CANARY in text:
            assert message["X-RcptTo"] == "neustart-wien@demo.invalid"
    assert any(FILE_CANARY in text_of(m) for m in messages)

    # Client and family have no channel: the intermediary is asked to hand the invitation over,
    # with the calendar attached, and the coordinator records the hand-over.
    handover = [
        m for m in messages if m["X-RcptTo"] == "jva-wien@demo.invalid" and calendar_parts(m)
    ]
    assert len(handover) == 2  # one for the client, one for the family
    from prefect.deployments import run_deployment

    record = run_deployment(
        "case-handover/record",
        parameters={
            "record": {
                "case_reference": case.reference,
                "handed_to": "client",
                "acting_representative": "jva-wien-1",
            }
        },
        timeout=0,
    )
    assert wait_for(record.id, FINAL).state.type == StateType.COMPLETED
    handed = rows(database, Notification, case_id=case.id, event="handover_request")
    assert {str(n.recipient_role): str(n.status) for n in handed} == {
        "client": "handed_over",
        "family": "sent",
    }


def refer_and_prepare(walk: Walk, file_number: str, conference_type: str) -> None:
    walk.waits_at("referral")
    walk.answer(file_number=file_number, needs=[], acting_representative=REP)
    walk.waits_at("preparation")
    walk.answer(
        conference_type=conference_type,
        starts_at=starts_in(9),
        time_zone="Europe/Vienna",
        location="neustart-wien-room-3",
        acting_representative=REP,
    )


def test_refused_consent_closes_the_case_or_goes_on_as_security(serving, database):
    closing, continuing = Walk.refer(stage="custody"), Walk.refer(stage="custody")
    for walk, number in ((closing, "RC-1"), (continuing, "RC-2")):
        refer_and_prepare(walk, number, "social_network")
    for walk in (closing, continuing):
        walk.waits_at("consent")
        walk.answer(client_consent="refused", acting_representative=REP)
    closing.waits_at("consent-refused")
    closing.answer(
        next_step="close_case", reason="Client declines any conference", acting_representative=REP
    )
    continuing.waits_at("consent-refused")
    continuing.answer(
        next_step="continue_as_security",
        reason="Security concerns remain",
        acting_representative=REP,
    )

    run = wait_for(closing.run_id, {StateType.COMPLETED, StateType.FAILED})
    assert run.state.type == StateType.COMPLETED
    closed = case_of(database, closing.run_id)
    assert (closed.status, closed.closure_reason, closed.stage) == (
        "closed",
        "consent_refused",
        "closed",
    )
    assert rows(database, Notification, case_id=closed.id) == []
    from models.record.tables import ConsentRecord

    [refusal] = rows(database, ConsentRecord, case_id=closed.id)
    assert refusal.decision == "refused"

    run = continuing.waits_at("stakeholders")
    assert "type:security" in run.tags and "type:social_network" not in run.tags
    assert "client and family are invited" not in continuing.description()
    security = case_of(database, continuing.run_id)
    assert security.conference_type == "security" and security.status == "open"
    assert rows(database, Notification, case_id=security.id) == []  # no invitation went out


def test_a_withdrawal_stops_the_social_network_track_at_once(serving, database, mail):
    """The coordinator records a withdrawal while the case's run waits at a form: that run is
    replaced at once by one that asks what follows; nothing already answered is asked again."""
    walk = Walk.refer(stage="custody")
    refer_and_prepare(walk, "WD-1", "social_network")
    walk.waits_at("consent")
    walk.answer(client_consent="granted", family_involvement=True, acting_representative=REP)
    walk.waits_at("stakeholders")
    walk.answer(acting_representative=REP)
    walk.waits_at("information")
    case = case_of(database, walk.run_id)
    from prefect.deployments import run_deployment

    withdrawal = run_deployment(
        "case-consent/withdraw",
        parameters={"withdrawal": {"case_reference": case.reference, "acting_representative": REP}},
        timeout=0,
    )
    assert wait_for(withdrawal.id, FINAL).state.type == StateType.COMPLETED
    stopped = read_run(walk.run_id)
    assert stopped.state.type == StateType.CANCELLED
    assert "consent withdrawn" in (stopped.state.message or "")
    with db(database) as s:
        now_following = s.get(Case, case.id).current_flow_run_id
    assert now_following != str(walk.run_id)
    replacement = Walk(UUID(now_following))
    run = replacement.waits_at("consent-refused")
    assert run.name == case.reference and f"case:{case.reference}" in run.tags
    notices = rows(database, Notification, case_id=case.id, event="consent_withdrawn")
    assert notices and all(n.recipient_role not in ("client", "family") for n in notices)
    replacement.answer(
        next_step="close_case", reason="Consent withdrawn", acting_representative=REP
    )
    assert wait_for(replacement.run_id, FINAL).state.type == StateType.COMPLETED
    with db(database) as s:
        closed = s.get(Case, case.id)
        assert (closed.status, closed.closure_reason) == ("closed", "consent_refused")


def test_bad_input_is_refused_and_nothing_is_half_written(serving, database, prefect_server):
    from prefect.deployments import run_deployment

    def count_cases() -> int:
        """This test's cases only: other tests' cases (and their background runs) share the
        database."""
        return len(rows(database, Case, referral_file_number="DUP-7"))

    before = count_cases()
    assert before == 0
    # A code that is not among the referral's choices: the server refuses the run, naming it.
    with pytest.raises(Exception, match="referring_agency"):
        Walk.refer("no-such-agency")

    first, second = Walk.refer(), Walk.refer()
    first.waits_at("referral")
    # The server refuses what breaks the form's schema, naming the field; the run keeps waiting.
    with pytest.raises(RuntimeError, match="file_number"):
        first.answer(file_number="???", acting_representative=REP)
    first.waits_at("referral")
    first.answer(file_number="DUP-7", needs=[], acting_representative=REP)
    first.waits_at("preparation")
    existing = case_of(database, first.run_id)

    second.waits_at("referral")
    second.answer(file_number="DUP-7", needs=[], acting_representative=REP)
    second.waits_at("referral", attempt=1)
    assert f"already has an open case, {existing.reference}" in second.description()
    assert count_cases() == before + 1

    close = run_deployment(
        "case-close/close",
        parameters={
            "closure": {
                "case_reference": "CASE-1999-9999",
                "reason": "other",
                "acting_representative": REP,
            }
        },
        timeout=0,
    )
    run = wait_for(close.id, {StateType.FAILED, StateType.COMPLETED})
    assert run.state.type == StateType.FAILED
    assert "case_reference: no case with this reference exists" in run.state.message

    close = run_deployment(
        "case-close/close",
        parameters={
            "closure": {
                "case_reference": existing.reference,
                "reason": "referral_withdrawn",
                "acting_representative": REP,
            }
        },
        timeout=0,
    )
    assert wait_for(close.id, FINAL).state.type == StateType.COMPLETED
    abandoned = wait_for(first.run_id, FINAL)
    assert abandoned.state.type == StateType.CANCELLED
    with get_client(sync_client=True) as client:
        assert (
            client.filter_flow_run_input(first.run_id, key_prefix="", limit=10, exclude_keys=set())
            == []
        )
    with db(database) as s:
        assert s.get(Case, existing.id).closure_reason == "referral_withdrawn"

    # With the first case closed the same file number may be referred again.
    second.answer(file_number="DUP-7", needs=[], acting_representative=REP)
    second.waits_at("preparation")
    assert case_of(database, second.run_id).reference != existing.reference


def test_stopping_the_serving_process_loses_nothing_and_repeats_nothing(serving, database, mail):
    walk = Walk.refer()
    refer_and_prepare(walk, "RS-1", "security")
    walk.waits_at("stakeholders")
    case = case_of(database, walk.run_id)

    # Stopped while the case waits: the run holds no process and simply goes on afterwards.
    serving.idle(walk.run_id)
    serving.stop()
    serving.start()
    assert read_run(walk.run_id).state.type == StateType.PAUSED
    walk.answer(acting_representative=REP)
    walk.waits_at("information")
    [conference] = rows(database, Conference, case_id=case.id)
    participants = len(rows(database, Participant, conference_id=conference.id))
    invitations = len(rows(database, Notification, case_id=case.id, event="invitation"))
    effects = {e.key for e in rows(database, Effect, case_id=case.id)}

    # Stopped mid-step: the runner cancels the run it is running; the next start brings it back.
    walk.answer(
        contributions=[
            {"agency": "jva-wien", "classification": "professional", "summary": "Stable."}
        ],
        acting_representative=REP,
    )
    wait_for(walk.run_id, {StateType.RUNNING})
    serving.stop()
    cut = wait_for(walk.run_id, FINAL)
    assert cut.state.type == StateType.CANCELLED and "Runner is shutting down" in cut.state.message
    serving.start()

    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{case.reference}"]))
        )
    [back] = [r for r in runs if r.id != walk.run_id]
    assert back.name == case.reference and back.parameters == {
        "case_reference": case.reference,
        "cycle": 1,
    }
    revived = Walk(back.id)
    run = revived.settle()
    answered = any(e.key.endswith("-information") for e in rows(database, Effect, case_id=case.id))
    revived.waits_at("decision" if answered else "information")
    with db(database) as s:
        assert s.get(Case, case.id).current_flow_run_id == str(back.id)
    # Nothing was done twice: the participants, invitations and earlier effects are as they were.
    assert len(rows(database, Participant, conference_id=conference.id)) == participants
    assert len(rows(database, Notification, case_id=case.id, event="invitation")) == invitations
    # The information step, when the cut came after it was applied: once, its forms forgotten.
    added = {e.key for e in rows(database, Effect, case_id=case.id)} - effects
    step = {key for key in added if key.endswith("-information")}
    assert added == (step | {key + FORGOTTEN for key in step}), added
    assert len(step) == (1 if answered else 0)
    assert run.state.type == StateType.PAUSED

    # Moving the conference sends each participant an update of the same calendar entry.
    from prefect.deployments import run_deployment

    def deployment(name: str, **parameters: object) -> None:
        run = run_deployment(name, parameters=parameters, timeout=0)
        finished = wait_for(run.id, FINAL)
        assert finished.state.type == StateType.COMPLETED, finished.state.message

    def calendars(method: str) -> list:
        found = []
        for message in mail.messages():
            if case.reference in message["Subject"]:
                found += [cal for m, cal in calendar_parts(message) if m == method]
        return [next(iter(c.walk("VEVENT"))) for c in found]

    soon = (BEGAN["now"].astimezone(UTC) + timedelta(hours=26)).astimezone(VIENNA)
    soon = soon.replace(minute=0, second=0, microsecond=0)
    if soon.hour in (1, 2, 3):  # never in the hour a clock change skips or repeats
        soon = soon.replace(hour=5)
    deployment(
        "case-conference/reschedule",
        change={
            "case_reference": case.reference,
            "starts_at": soon.replace(tzinfo=None).isoformat(),
            "time_zone": "Europe/Vienna",
            "acting_representative": REP,
        },
    )
    email_channels = len(
        [
            n
            for n in rows(database, Notification, case_id=case.id, event="invitation")
            if not n.channel.endswith("-chat")
        ]
    )
    updates = [e for e in calendars("REQUEST") if e["SEQUENCE"] == 1]
    assert len(updates) == email_channels
    assert all(e.decoded("DTSTART") == soon for e in updates)
    assert {str(e["UID"]) for e in updates} == {conference.ical_uid}

    # The sweep finds the conference within its reminder lead: one reminder each, however often
    # it runs, whether or not the case's own run is active.
    for _ in range(2):
        deployment("notifications-sweep/sweep")
    assert len(rows(database, Notification, case_id=case.id, event="reminder")) == len(
        rows(database, Notification, case_id=case.id, event="rescheduled")
    )

    # Closing the case cancels the conference for everyone and the run that waited.
    deployment(
        "case-close/close",
        closure={"case_reference": case.reference, "reason": "other", "acting_representative": REP},
    )
    cancels = calendars("CANCEL")
    assert len(cancels) == email_channels and all(e["SEQUENCE"] == 2 for e in cancels)
    assert wait_for(back.id, FINAL).state.type == StateType.CANCELLED


def test_the_same_case_under_each_shipped_profile_invites_by_that_profiles_rules(serving, database):
    """One case (in custody, a mental-health need) under each shipped profile: who is invited,
    in which role, and the rule that put each there."""
    expected = {
        "generic": (
            "security",
            {
                "dsn": "lead",
                "jva-wien": "core",
                "neustart-wien": "core",
                "psd-wien": "case_dependent",
            },
        ),
        "catalonia": (
            "security",
            {
                "jva-wien": "lead",
                "magistrat-wien": "lead",
                "lpd-wien": "core",
                "neustart-wien": "core",
                "psd-wien": "case_dependent",
            },
        ),
        "austria-neustart": (
            "social_network",
            {
                "neustart-wien": "lead",
                "sta-wien": "core",
                "sozialzentrum-wien": "core",
                "psd-wien": "case_dependent",
                "client": "client",
                "family": "family",
            },
        ),
    }
    walks = {name: Walk.refer(stage="custody", profile=name) for name in expected}
    for name, walk in walks.items():
        walk.waits_at("referral")
        walk.answer(file_number=f"PRF-{name}", needs=["mental_health"], acting_representative=REP)
    for name, walk in walks.items():
        walk.waits_at("preparation")
        walk.answer(
            conference_type=expected[name][0],
            starts_at=starts_in(11),
            time_zone="Europe/Vienna",
            location="magistrat-wien-room-1",
            acting_representative=REP,
        )
    neustart = walks["austria-neustart"]
    neustart.waits_at("consent")
    neustart.answer(client_consent="granted", family_involvement=True, acting_representative=REP)
    for name, walk in walks.items():
        walk.waits_at("stakeholders")
        assert f"in profile {name}" in walk.description()
        walk.answer(acting_representative=REP)
    with db(database) as s:
        codes = {a.id: a.code for a in s.exec(select(Agency))}
    for name, walk in walks.items():
        walk.waits_at("information")
        case = case_of(database, walk.run_id)
        assert case.profile == name
        [conference] = rows(database, Conference, case_id=case.id)
        invited = {
            (codes[p.agency_id] if p.agency_id else str(p.role)): p
            for p in rows(database, Participant, conference_id=conference.id)
        }
        assert {who: str(p.role) for who, p in invited.items()} == expected[name][1], name
        for who, p in invited.items():
            why = p.rule
            assert (f"in profile {name}" in why) if p.agency_id else ("invited through" in why), (
                name,
                who,
                why,
            )
        assert "need mental_health" in invited["psd-wien"].rule
