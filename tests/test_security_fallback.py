"""Issue 9 part B as plain functions: the security fallback re-selects, hand-overs say for whom,
every item has an audience, the client and family may own an action, share_with consent."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from models.config.profile import load_profile
from models.errors import Refusal
from models.messaging.delivery import compose
from models.record.tables import (
    ActionItem,
    Agency,
    AuditEvent,
    Case,
    Conference,
    Notification,
    Participant,
    PlanItem,
)
from models.rules.cases import refer_case
from models.rules.conference import (
    ActionEntry,
    PlanDecisionEntry,
    continue_as_security,
    open_conference,
    record_decision,
    record_family_plan,
)
from models.rules.consent import record_consent
from models.rules.fallback import reselect_as_security, was_invited
from models.rules.followup import queue_due_notices
from models.rules.invitations import queue_invitations, record_handover
from models.rules.participants import record_participants
from models.rules.release import minutes_for, release
from models.rules.stakeholders import AgencyView, Proposal, propose_participants
from models.vocabulary import (
    Classification,
    ConferenceKind,
    ConferenceType,
    ConsentDecision,
    Phase,
    Role,
    Stage,
    share_with_scope,
)

pytestmark = pytest.mark.database

NOW = datetime(2034, 3, 6, 8, 0, tzinfo=UTC)
STARTS_AT = datetime(2034, 3, 20, 10, 0, tzinfo=ZoneInfo("Europe/Vienna"))
SOCIAL = [
    Proposal("neustart-wien", Role.lead, "test: lead"),
    Proposal("sta-wien", Role.core, "test: core"),
]


def make_case(session: Session, number: str, profile: str = "austria-neustart") -> Case:
    return refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=number,
        stage=Stage.custody,
        needs=[],
        profile=profile,
        acting_representative_code="neustart-wien-1",
        reference_prefix="FBK",
        flow_run_id=None,
        now=NOW,
    )


def social_conference(session: Session, case: Case, relations: tuple[str, ...] = ("parent",)):
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=ConferenceType.social_network,
        starts_at=STARTS_AT,
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    record_participants(
        session,
        conference=conference,
        proposals=SOCIAL,
        client_and_family=True,
        family_involved=True,
        intermediary_code="jva-wien",
        family_relations=relations,
    )
    return conference


def code_of(session: Session, agency_id: int | None) -> str:
    agency = session.get(Agency, agency_id)
    assert agency is not None
    return agency.code


def security_list(session: Session, case: Case) -> list[Proposal]:
    agencies = [AgencyView.of(a) for a in session.exec(select(Agency))]
    return propose_participants(
        profile=load_profile(case.profile),
        agencies=agencies,
        stage=Stage(case.stage),
        conference_type=ConferenceType.security,
        needs=[],
    ).proposals


def new_rows(session: Session, case: Case, seen: set[int]) -> list[Notification]:
    found = session.exec(select(Notification).where(Notification.case_id == case.id)).all()
    return [n for n in found if n.id not in seen]


def test_going_on_as_security_after_invitations_tells_each_participant_what_changed(
    session: Session,
) -> None:
    case = make_case(session, "FB-U1")
    conference = social_conference(session, case, ("parent", "sibling"))
    invited = queue_invitations(session, case=case, conference=conference, now=NOW)
    handovers = [session.get(Notification, i) for i in invited]
    # One hand-over per person, each saying for whom (by relation, never a name).
    assert sorted({str(n.detail["for"]) for n in handovers if n and n.detail.get("for")}) == [
        "client",
        "family:parent",
        "family:sibling",
    ]
    seen = set(invited)
    continue_as_security(session, case=case, conference=conference)
    found = reselect_as_security(
        session,
        case=case,
        conference=conference,
        confirmed=security_list(session, case),
        representatives={},
        last={},
        actor_id=None,
        now=NOW,
    )
    assert {(c.who, c.verb) for c in found} == {
        ("neustart-wien", "stays, was lead"),
        ("sta-wien", "leaves"),
        ("client", "leaves"),
        ("family (parent)", "leaves"),
        ("family (sibling)", "leaves"),
        ("dsn", "joins"),
        ("jva-wien", "joins"),
    }
    people = session.exec(
        select(Participant).where(Participant.conference_id == conference.id)
    ).all()
    assert {(code_of(session, p.agency_id), str(p.role)) for p in people} == {
        ("dsn", "lead"),
        ("jva-wien", "core"),
        ("neustart-wien", "core"),
    }
    assert conference.ical_sequence == 1
    told = sorted(
        (code_of(session, n.recipient_agency_id), n.event, n.detail.get("for"))
        for n in new_rows(session, case, seen)
        if n.channel != "neustart-wien-chat"
    )
    assert told == [
        ("dsn", "invitation", None),
        ("jva-wien", "handover_withdrawn", "client"),
        ("jva-wien", "handover_withdrawn", "family:parent"),
        ("jva-wien", "handover_withdrawn", "family:sibling"),
        ("jva-wien", "invitation", None),
        ("neustart-wien", "invitation_updated", None),
        ("sta-wien", "participation_cancelled", None),
    ]
    # The invitation step that follows adds nothing: each is keyed as this sequence's.
    before = {n.id for n in session.exec(select(Notification))}
    queue_invitations(session, case=case, conference=conference, now=NOW)
    assert {n.id for n in session.exec(select(Notification))} == before

    # Calendars: CANCEL to who leaves, REQUEST to who joins and to who stays, SEQUENCE 1; the
    # intermediary's hand-over withdrawal carries a cancellation file, no iMIP part.
    def out(code: str, event: str):  # type: ignore[no-untyped-def]
        [row] = [
            n
            for n in new_rows(session, case, seen)
            if n.event == event and n.channel == code and n.detail.get("for") in (None, "client")
        ]
        return compose(
            session,
            notification=row,
            mail_from="caseconf@demo.invalid",
            duration=timedelta(hours=1),
            now=NOW,
        )

    cancelled = out("sta-wien", "participation_cancelled")
    assert cancelled.calendar and "METHOD:CANCEL" in cancelled.calendar
    assert "SEQUENCE:1" in cancelled.calendar
    assert "METHOD:REQUEST" in (out("dsn", "invitation").calendar or "")
    updated = out("neustart-wien", "invitation_updated")
    assert updated.calendar and "SEQUENCE:1" in updated.calendar
    withdrawn = out("jva-wien", "handover_withdrawn")
    assert withdrawn.calendar is None
    [(name, ics)] = withdrawn.attachments
    assert name == "invitation-client.ics" and b"METHOD:CANCEL" in ics
    audit = session.exec(
        select(AuditEvent).where(
            AuditEvent.case_id == case.id,
            AuditEvent.action == "participants.reselected_as_security",
        )
    ).one()
    assert "sta-wien" in (audit.detail or "")


def test_before_the_invitations_went_out_the_list_is_replaced_without_a_message(
    session: Session,
) -> None:
    case = make_case(session, "FB-U2")
    conference = social_conference(session, case)
    assert not was_invited(session, conference_id=conference.id)  # type: ignore[arg-type]
    continue_as_security(session, case=case, conference=conference)
    reselect_as_security(
        session,
        case=case,
        conference=conference,
        confirmed=security_list(session, case),
        representatives={},
        last={},
        actor_id=None,
        now=NOW,
    )
    assert new_rows(session, case, set()) == []
    assert conference.ical_sequence == 0
    queue_invitations(session, case=case, conference=conference, now=NOW)
    rows = new_rows(session, case, set())
    assert {n.event for n in rows} == {"invitation"}
    assert "sta-wien" not in {code_of(session, n.recipient_agency_id) for n in rows}


def test_a_security_conference_never_records_or_tells_the_client_and_family(
    session: Session,
) -> None:
    """Even when a profile's security type says client_and_family (a profile may), nothing
    reaches them: no participant, no hand-over, no minutes."""
    case = make_case(session, "FB-U3")
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=ConferenceType.security,
        starts_at=STARTS_AT,
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    record_participants(
        session,
        conference=conference,
        proposals=[Proposal("dsn", Role.lead, "test")],
        client_and_family=True,
        family_involved=True,
        intermediary_code="jva-wien",
    )
    people = session.exec(
        select(Participant).where(Participant.conference_id == conference.id)
    ).all()
    assert [str(p.role) for p in people] == ["lead"]
    ids = queue_invitations(session, case=case, conference=conference, now=NOW)
    assert all(session.get(Notification, i).recipient_role == "lead" for i in ids)  # type: ignore[union-attr]


def test_an_action_of_the_client_or_family_goes_through_their_intermediary(
    session: Session,
) -> None:
    case = make_case(session, "FB-U4")
    conference = social_conference(session, case)
    conference.phase = Phase.family_only
    record_family_plan(session, conference=conference, items=["Visit the family monthly"])
    [drafted] = session.exec(select(PlanItem).where(PlanItem.conference_id == conference.id)).all()
    assert drafted.classification == Classification.shared  # their own plan
    today = NOW.date()
    with pytest.raises(Refusal) as refused:
        record_decision(
            session,
            case=case,
            conference=conference,
            plan_decisions=[PlanDecisionEntry(item=1, outcome="accepted", reason="fits")],
            decisions=[],
            actions=[
                ActionEntry(
                    owner_role="family",
                    owner_agency="sta-wien",
                    description="Join the parents group",
                    due_on=today + timedelta(days=20),
                    classification="shared",
                ),
                ActionEntry(
                    owner_role="client",
                    description="Attend the course",
                    due_on=today + timedelta(days=20),
                ),
                ActionEntry(description="No owner", due_on=today + timedelta(days=20)),
            ],
            next_review_on=today + timedelta(days=80),
            today=today,
        )
    text = str(refused.value)
    assert "actions[0].owner_agency: leave it empty" in text and "jva-wien" in text
    assert "actions[1].classification: must be shared" in text
    assert "actions[2].owner_agency: required" in text
    ids = record_decision(
        session,
        case=case,
        conference=conference,
        plan_decisions=[
            PlanDecisionEntry(
                item=1, outcome="accepted", reason="fits", classification="professional"
            )
        ],
        decisions=["Professional note"],
        shared_decisions=["Shared note"],
        actions=[
            ActionEntry(
                owner_role="family",
                description="Join the parents group",
                due_on=today + timedelta(days=2),
                classification="shared",
            ),
            ActionEntry(
                owner_agency="sta-wien",
                description="Review the conditions",
                due_on=today + timedelta(days=30),
            ),
        ],
        next_review_on=today + timedelta(days=80),
        today=today,
    )
    theirs = session.get(ActionItem, ids[0])
    assert theirs is not None and theirs.owner_role == Role.family
    assert code_of(session, theirs.owner_agency_id) == "jva-wien"
    plan = {
        p.text: p.classification
        for p in session.exec(select(PlanItem).where(PlanItem.conference_id == conference.id))
    }
    assert plan == {
        "Visit the family monthly": "professional",
        "Professional note": "professional",
        "Shared note": "shared",
    }
    # The client's and family's minutes carry only shared items; a professional's all.
    by_role = {
        str(p.role): minutes_for(
            session, case=case, conference=conference, participant=p, today=today
        )
        for p in session.exec(select(Participant).where(Participant.conference_id == conference.id))
    }
    shared_plan = {p.id for p in session.exec(select(PlanItem)) if p.text == "Shared note"}
    assert set(by_role["family"].plan_ids) == shared_plan
    assert set(by_role["family"].action_ids) == {ids[0]}
    assert len(by_role["lead"].plan_ids) == 3 and set(by_role["lead"].action_ids) == set(ids)

    # The reminders go to the intermediary, addressed for hand-over.
    release(session, case=case, conference=conference, now=NOW)
    queue_due_notices(
        session, now=NOW + timedelta(days=1), reminder_lead=timedelta(0), due_soon=timedelta(days=3)
    )
    notices = session.exec(
        select(Notification).where(
            Notification.case_id == case.id,
            Notification.event.in_(("action_assigned", "action_due_soon")),  # type: ignore[attr-defined]
            Notification.channel == "jva-wien",
        )
    ).all()
    assert {(n.event, str(n.recipient_role)) for n in notices} == {
        ("action_assigned", "family"),
        ("action_due_soon", "family"),
    }
    message = compose(
        session,
        notification=notices[0],
        mail_from="caseconf@demo.invalid",
        duration=timedelta(hours=1),
        now=NOW,
    )
    assert "Diese Maßnahme betrifft die Angehörigen" in message.body


def test_an_action_for_a_client_who_is_not_in_the_conference_is_refused(
    session: Session,
) -> None:
    case = make_case(session, "FB-U5")
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=ConferenceType.security,
        starts_at=STARTS_AT,
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    record_participants(
        session,
        conference=conference,
        proposals=[Proposal("dsn", Role.lead, "test")],
        client_and_family=False,
        family_involved=False,
        intermediary_code=None,
    )
    conference.phase = Phase.decision
    with pytest.raises(Refusal) as refused:
        record_decision(
            session,
            case=case,
            conference=conference,
            plan_decisions=[],
            decisions=[],
            actions=[
                ActionEntry(
                    owner_role="client",
                    description="Attend",
                    due_on=NOW.date() + timedelta(days=5),
                    classification="shared",
                )
            ],
            next_review_on=NOW.date() + timedelta(days=50),
            today=NOW.date(),
        )
    assert "actions[0].owner_role: the client does not take part in this conference" in str(
        refused.value
    )


def test_share_with_consent_decides_whether_an_agency_gets_professional_items(
    session: Session, tmp_path, monkeypatch
) -> None:
    """A profile that makes the prosecution need share_with consent: without it, shared only."""
    import yaml

    from models.config.settings import get_settings

    data = yaml.safe_load((get_settings().profiles_dir / "austria-neustart.yaml").read_text())
    data["name"] = "share-test"
    data["conference_types"]["social_network"]["share_with_consent_kinds"] = ["prosecution"]
    (tmp_path / "share-test.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CASECONF_PROFILES_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        case = make_case(session, "FB-U6", profile="share-test")
        conference = social_conference(session, case)
        [prosecutor] = [
            p
            for p in session.exec(
                select(Participant).where(Participant.conference_id == conference.id)
            )
            if p.agency_id and code_of(session, p.agency_id) == "sta-wien"
        ]
        today = NOW.date()

        def levels() -> frozenset[Classification]:
            return minutes_for(
                session, case=case, conference=conference, participant=prosecutor, today=today
            ).classifications

        assert levels() == {Classification.shared}
        record_consent(
            session,
            case_id=case.id,  # type: ignore[arg-type]
            scope=share_with_scope("sta-wien"),
            decision=ConsentDecision.granted,
            recorded_by_id=1,
            expires_on=date(2034, 3, 10),
            now=NOW,
        )
        assert levels() == {Classification.shared, Classification.professional}
        today = date(2034, 3, 11)  # expired
        assert levels() == {Classification.shared}
    finally:
        get_settings.cache_clear()


def test_a_handover_is_recorded_for_the_family_member_named_by_relation(
    session: Session,
) -> None:
    case = make_case(session, "FB-U7")
    conference = social_conference(session, case, ("parent", "sibling"))
    ids = queue_invitations(session, case=case, conference=conference, now=NOW)
    for i in ids:
        row = session.get(Notification, i)
        assert row is not None
        row.status = "sent"
        session.add(row)
    handed = record_handover(
        session,
        case=case,
        conference=conference,
        role=Role.family,
        actor_id=1,
        now=NOW,
        relation="sibling",
    )
    assert {session.get(Notification, i).detail["for"] for i in handed} == {"family:sibling"}  # type: ignore[union-attr]
    with pytest.raises(Refusal, match="relation"):
        record_handover(
            session,
            case=case,
            conference=conference,
            role=Role.family,
            actor_id=1,
            now=NOW,
            relation="partner",
        )
    continue_as_security(session, case=case, conference=conference)
    reselect_as_security(
        session,
        case=case,
        conference=conference,
        confirmed=security_list(session, case),
        representatives={},
        last={},
        actor_id=None,
        now=NOW,
    )
    with pytest.raises(Refusal, match="no longer includes the client"):
        record_handover(
            session, case=case, conference=conference, role=Role.client, actor_id=1, now=NOW
        )
    assert session.get(Conference, conference.id) is not None
