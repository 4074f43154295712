"""Whole cases walked through a real Prefect server, as a coordinator does in the UI.

Each resume costs seconds, so walks are few and each asserts a lot: database rows and run
states at every step. Rules themselves are tested as plain functions elsewhere.
"""

from datetime import date, datetime, timedelta

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from sqlmodel import Session, col, select

from models.database import get_engine
from models.tables import (
    ActionItem,
    AuditEvent,
    Case,
    Conference,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Review,
)
from models.vocabulary import Phase
from tests.prefect_harness import Walk, read_run, wait_for

pytestmark = pytest.mark.flow

REP = "neustart-wien-1"


def in_days(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def starts_in(days: int) -> str:
    return (datetime.now() + timedelta(days=days)).replace(hour=10, minute=0, second=0).isoformat()


def db(database: str) -> Session:
    return Session(get_engine(database), expire_on_commit=False)


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
def test_security_case_walks_from_referral_to_a_scheduled_review(serving, database):
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
            key_prefix=f"suspended-{walk.run_id}-referral",
            limit=50,
            exclude_keys=set(),
        )
    assert kept == []

    walk.answer(
        conference_type="security",
        starts_at=starts_in(10),
        time_zone="Europe/Vienna",
        location="Justizanstalt, room 2",
        acting_representative=REP,
    )
    run = walk.waits_at("stakeholders")
    assert "type:security" in run.tags
    proposal = walk.description()
    assert "| `dsn` | lead |" in proposal and "need mental_health" in proposal
    [conference] = rows(database, Conference, case_id=case.id)
    assert conference.conference_type == "security"
    assert conference.starts_at.hour == 9  # 10:00 in Vienna is 09:00 UTC in winter
    assert rows(database, Notification, case_id=case.id) == []  # nothing sent before confirmation

    walk.answer(acting_representative=REP)
    walk.waits_at("information")
    participants = rows(database, Participant, conference_id=conference.id)
    roles = sorted(str(p.role) for p in participants)
    assert "client" not in roles and "family" not in roles
    assert roles.count("lead") == 1
    invitations = rows(database, Notification, case_id=case.id, event="invitation")
    assert len(invitations) == len(participants)

    walk.answer(
        items=[
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
    walk.answer(
        decisions=["Continue mentoring"],
        actions=[
            {"owner_agency": "ams-wien", "description": "Arrange a course", "due_on": in_days(30)}
        ],
        next_review_on=in_days(-1),
        acting_representative=REP,
    )
    walk.waits_at("decision", attempt=1)
    reason = walk.description()
    assert "actions[0].owner_agency: not a professional in this conference" in reason
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
        assert len(minutes) == len(participants)
        actions_logged = [
            e.action
            for e in s.exec(
                select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(col(AuditEvent.id))
            )
        ]
    assert actions_logged[0] == "case.referred" and "conference.decision" in actions_logged
    assert review.cycle == 2 and review.due_at.date() == date.fromisoformat(in_days(60))
    scheduled = read_run(review.flow_run_id)
    assert scheduled.state.type == StateType.SCHEDULED
    assert scheduled.name == f"{case.reference} review 1"
    assert f"case:{case.reference}" in scheduled.tags
    assert scheduled.parameters == {"case_reference": case.reference, "cycle": 2}


CANARY = "Zq7Canary"  # typed into every free-text field below; must never reach Prefect


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
        if path.is_file() and path.suffix not in {".db", ".db-wal", ".db-shm"}:
            if canary.encode() in path.read_bytes():
                found.append(str(path))
    if canary in serve_log.read_text(errors="replace"):
        found.append("serve.log")
    return found


def test_social_network_case_with_consent_family_plan_and_item_by_item_decision(
    serving, database, prefect_server
):
    walk = Walk.refer("neustart-wien", stage="pre_release")
    walk.waits_at("referral")
    walk.answer(file_number=f"{CANARY}-file", needs=["housing"], acting_representative=REP)
    walk.waits_at("preparation")
    case = case_of(database, walk.run_id)

    walk.answer(
        conference_type="social_network",
        starts_at=starts_in(12),
        time_zone="Europe/Vienna",
        location="Neustart Wien, meeting room",
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
    by_hand = rows(database, Notification, case_id=case.id, channel="by_hand")
    assert sorted(str(n.recipient_role) for n in by_hand) == ["client", "family"]

    walk.answer(
        items=[
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
        from models.release import minutes_per_audience

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
