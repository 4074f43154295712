"""A conference cycle's rules: opening, information, the family's plan, the decision, audiences."""

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from models.config.profile import Profile, load_profile
from models.errors import Refusal
from models.record.tables import (
    ActionItem,
    Case,
    Conference,
    InformationItem,
    Participant,
    PlanItem,
)
from models.rules.cases import refer_case
from models.rules.conference import (
    ActionEntry,
    InformationEntry,
    PlanDecisionEntry,
    audience,
    open_conference,
    plan_items,
    record_decision,
    record_family_plan,
    record_information,
)
from models.rules.participants import record_participants
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    PROFESSIONAL_ROLES,
    ActionStatus,
    AgencyKind,
    Classification,
    ConferenceKind,
    ConferenceType,
    Need,
    Phase,
    PlanOutcome,
    Role,
    Stage,
)

pytestmark = pytest.mark.database

NOW = datetime(2034, 1, 15, 8, 0, tzinfo=UTC)
TODAY = NOW.date()

PROPOSALS = [
    Proposal("neustart-wien", Role.lead, "test: lead and coordinator"),
    Proposal("jva-wien", Role.core, "test: core"),
    Proposal("dsn", Role.core, "test: core"),
]


def new_case(session: Session, file_number: str = "CONF-1") -> Case:
    return refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=file_number,
        stage=Stage.custody,
        needs=[Need.housing],
        profile="generic",
        acting_representative_code="neustart-wien-1",
        reference_prefix="CONF",
        flow_run_id=None,
        now=NOW,
    )


def new_conference(
    session: Session,
    conference_type: ConferenceType = ConferenceType.security,
    *,
    case: Case | None = None,
    phase: Phase | None = None,
) -> Conference:
    """A conference with lead neustart-wien, core jva-wien and dsn; in its information phase."""
    case = case or new_case(session)
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=conference_type,
        starts_at=NOW + timedelta(days=14),
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    social = conference_type == ConferenceType.social_network
    record_participants(
        session,
        conference=conference,
        proposals=PROPOSALS,
        client_and_family=social,
        family_involved=social,
        intermediary_code="neustart-wien" if social else None,
        client_phases=["family_only", "decision"] if social else (),
    )
    assert conference.phase == Phase.information
    if phase is not None:
        conference.phase = phase
        session.add(conference)
        session.flush()
    return conference


def fields(caught: pytest.ExceptionInfo[Refusal]) -> set[str]:
    return {p.field for p in caught.value.problems}


def count(session: Session, table: type, **where: object) -> int:
    query = select(func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(getattr(table, name) == value)
    return session.exec(query).one()


# --- open_conference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "starts_at",
    [NOW - timedelta(hours=1), NOW, NOW + timedelta(days=367), NOW + timedelta(days=800)],
)
def test_conference_must_start_in_the_coming_year(session: Session, starts_at: datetime) -> None:
    case = new_case(session)
    with pytest.raises(Refusal) as caught:
        open_conference(
            session,
            case=case,
            kind=ConferenceKind.first,
            conference_type=ConferenceType.security,
            starts_at=starts_at,
            time_zone="Europe/Vienna",
            location="Room 1",
            now=NOW,
        )
    assert fields(caught) == {"starts_at"}
    assert count(session, Conference, case_id=case.id) == 0


def test_open_conference_creates_then_reschedules_the_cycle(session: Session) -> None:
    case = new_case(session)
    arguments = {
        "case": case,
        "kind": ConferenceKind.first,
        "time_zone": "Europe/Vienna",
        "location": "Room 1",
        "now": NOW,
    }
    first = open_conference(
        session,
        conference_type=ConferenceType.social_network,
        starts_at=NOW + timedelta(days=10),
        **arguments,  # type: ignore[arg-type]
    )
    again = open_conference(
        session,
        conference_type=ConferenceType.security,
        starts_at=NOW + timedelta(days=300),
        **arguments,  # type: ignore[arg-type]
    )
    assert again.id == first.id
    assert again.starts_at == NOW + timedelta(days=300)
    assert again.phase == Phase.stakeholders
    assert case.conference_type == ConferenceType.security
    assert count(session, Conference, case_id=case.id) == 1


# --- record_information ---------------------------------------------------------------------


def test_information_is_stored_by_classification(session: Session) -> None:
    conference = new_conference(session)
    ids = record_information(
        session,
        conference=conference,
        entries=[
            InformationEntry(agency="dsn", classification="restricted", pointer="DSN file 12/a"),
            InformationEntry(agency="jva-wien", classification="professional", summary=" Calm. "),
            InformationEntry(agency="neustart-wien", classification="shared", summary="Works."),
        ],
        next_phase=Phase.decision,
        now=NOW,
    )
    rows = [session.get(InformationItem, i) for i in ids]
    assert [(r.classification, r.summary, r.pointer) for r in rows if r] == [
        (Classification.restricted, None, "DSN file 12/a"),
        (Classification.professional, "Calm.", None),
        (Classification.shared, "Works.", None),
    ]
    assert conference.phase == Phase.decision


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"agency": "dsn", "classification": "restricted"}, "contributions[0].pointer"),
        (
            {"agency": "dsn", "classification": "restricted", "pointer": "  "},
            "contributions[0].pointer",
        ),
        (
            {
                "agency": "dsn",
                "classification": "restricted",
                "pointer": "P-SECRET",
                "summary": "S-SECRET",
            },
            "contributions[0].summary",
        ),
        ({"agency": "dsn", "classification": "professional"}, "contributions[0].summary"),
        (
            {"agency": "dsn", "classification": "shared", "summary": "  "},
            "contributions[0].summary",
        ),
        (
            {
                "agency": "dsn",
                "classification": "professional",
                "summary": "S-SECRET",
                "pointer": "P-SECRET",
            },
            "contributions[0].pointer",
        ),
        (
            {
                "agency": "dsn",
                "classification": "shared",
                "summary": "S-SECRET",
                "pointer": "P-SECRET",
            },
            "contributions[0].pointer",
        ),
        (
            {"agency": "psd-wien", "classification": "shared", "summary": "s"},
            "contributions[0].agency",
        ),
        (
            {"agency": "nowhere", "classification": "shared", "summary": "s"},
            "contributions[0].agency",
        ),
    ],
)
def test_information_entry_rules(session: Session, entry: dict[str, str], field: str) -> None:
    conference = new_conference(session)
    with pytest.raises(Refusal) as caught:
        record_information(
            session,
            conference=conference,
            entries=[InformationEntry(**entry)],  # type: ignore[arg-type]
            next_phase=Phase.decision,
            now=NOW,
        )
    assert fields(caught) == {field}
    assert "SECRET" not in str(caught.value)
    assert count(session, InformationItem, conference_id=conference.id) == 0
    assert conference.phase == Phase.information


def test_restricted_information_is_refused_in_social_network_conferences(
    session: Session,
) -> None:
    conference = new_conference(session, ConferenceType.social_network)
    with pytest.raises(Refusal) as caught:
        record_information(
            session,
            conference=conference,
            entries=[InformationEntry(agency="dsn", classification="restricted", pointer="p")],
            next_phase=Phase.family_only,
            now=NOW,
        )
    assert fields(caught) == {"contributions[0].classification"}
    assert count(session, InformationItem, conference_id=conference.id) == 0


def test_information_is_all_or_nothing(session: Session) -> None:
    conference = new_conference(session)
    with pytest.raises(Refusal) as caught:
        record_information(
            session,
            conference=conference,
            entries=[
                InformationEntry(agency="jva-wien", classification="professional", summary="ok"),
                InformationEntry(agency="neustart-wien", classification="shared", summary="ok"),
                InformationEntry(agency="dsn", classification="restricted"),
            ],
            next_phase=Phase.decision,
            now=NOW,
        )
    assert fields(caught) == {"contributions[2].pointer"}
    assert count(session, InformationItem, conference_id=conference.id) == 0
    assert conference.phase == Phase.information


@pytest.mark.parametrize("phase", [Phase.stakeholders, Phase.decision, Phase.release])
def test_information_outside_the_information_phase_is_refused(
    session: Session, phase: Phase
) -> None:
    conference = new_conference(session, phase=phase)
    with pytest.raises(Refusal) as caught:
        record_information(
            session,
            conference=conference,
            entries=[InformationEntry(agency="dsn", classification="shared", summary="s")],
            next_phase=Phase.decision,
            now=NOW,
        )
    assert fields(caught) == {"phase"}
    assert count(session, InformationItem, conference_id=conference.id) == 0


# --- the family's plan ----------------------------------------------------------------------


def test_family_plan_is_numbered_and_moves_to_decision(session: Session) -> None:
    conference = new_conference(session, ConferenceType.social_network, phase=Phase.family_only)
    record_family_plan(session, conference=conference, items=[" Find a flat ", "Weekly call"])
    items = plan_items(session, conference_id=conference.id)  # type: ignore[arg-type]
    assert [(p.number, p.text, p.drafted_by, p.outcome) for p in items] == [
        (1, "Find a flat", Role.family, None),
        (2, "Weekly call", Role.family, None),
    ]
    assert conference.phase == Phase.decision


@pytest.mark.parametrize(
    ("items", "expected"),
    [([], {"plan_items"}), (["ok", "  "], {"plan_items[1]"})],
)
def test_family_plan_refusals(session: Session, items: list[str], expected: set[str]) -> None:
    conference = new_conference(session, ConferenceType.social_network, phase=Phase.family_only)
    with pytest.raises(Refusal) as caught:
        record_family_plan(session, conference=conference, items=items)
    assert fields(caught) == expected
    assert count(session, PlanItem, conference_id=conference.id) == 0
    assert conference.phase == Phase.family_only


def test_family_plan_outside_family_only_phase_is_refused(session: Session) -> None:
    conference = new_conference(session, ConferenceType.social_network)
    with pytest.raises(Refusal) as caught:
        record_family_plan(session, conference=conference, items=["x"])
    assert fields(caught) == {"phase"}


# --- record_decision ------------------------------------------------------------------------


def planned(session: Session, items: list[str]) -> tuple[Case, Conference]:
    case = new_case(session)
    conference = new_conference(
        session, ConferenceType.social_network, case=case, phase=Phase.family_only
    )
    record_family_plan(session, conference=conference, items=items)
    return case, conference


def decide(
    session: Session,
    case: Case,
    conference: Conference,
    *,
    plan_decisions: list[PlanDecisionEntry] | None = None,
    decisions: list[str] | None = None,
    actions: list[ActionEntry] | None = None,
    next_review_on: date | None = TODAY + timedelta(weeks=12),
    closes: bool = False,
) -> list[int]:
    return record_decision(
        session,
        case=case,
        conference=conference,
        plan_decisions=plan_decisions or [],
        decisions=decisions or [],
        actions=actions or [],
        next_review_on=next_review_on,
        today=TODAY,
        closes=closes,
    )


def pd(item: int, outcome: str, amendment: str | None = None) -> PlanDecisionEntry:
    return PlanDecisionEntry(item=item, outcome=outcome, amendment=amendment, reason="because")  # type: ignore[arg-type]


def action(owner: str = "jva-wien", due_in_days: int = 30) -> ActionEntry:
    return ActionEntry(
        owner_agency=owner,
        description="Arrange a housing appointment",
        due_on=TODAY + timedelta(days=due_in_days),
    )


def test_decision_records_outcomes_decisions_and_actions(session: Session) -> None:
    case, conference = planned(session, ["Find a flat", "Weekly call", "Join a club"])
    ids = decide(
        session,
        case,
        conference,
        plan_decisions=[
            pd(2, "amended", " Fortnightly call "),
            pd(1, "accepted"),
            pd(3, "rejected"),
        ],
        decisions=["Share the plan with the prison"],
        actions=[action("jva-wien"), action("dsn", 60)],
    )
    items = plan_items(session, conference_id=conference.id)  # type: ignore[arg-type]
    assert [(p.number, p.outcome, p.amendment, p.drafted_by) for p in items] == [
        (1, PlanOutcome.accepted, None, Role.family),
        (2, PlanOutcome.amended, "Fortnightly call", Role.family),
        (3, PlanOutcome.rejected, None, Role.family),
        (4, PlanOutcome.accepted, None, Role.lead),
    ]
    assert all(p.reason for p in items[:3])
    rows = [session.get(ActionItem, i) for i in ids]
    assert [(r.status, r.case_id, r.due_on) for r in rows if r] == [
        (ActionStatus.open, case.id, TODAY + timedelta(days=30)),
        (ActionStatus.open, case.id, TODAY + timedelta(days=60)),
    ]
    assert conference.phase == Phase.release


@pytest.mark.parametrize(
    ("plan_decisions", "expected"),
    [
        ([pd(1, "accepted")], {"plan_decisions"}),
        ([pd(1, "accepted"), pd(1, "rejected"), pd(2, "accepted")], {"plan_decisions[1].item"}),
        ([pd(1, "accepted"), pd(2, "accepted"), pd(3, "accepted")], {"plan_decisions[2].item"}),
        ([pd(1, "amended"), pd(2, "accepted")], {"plan_decisions[0].amendment"}),
        ([pd(1, "amended", "  "), pd(2, "accepted")], {"plan_decisions[0].amendment"}),
        ([pd(1, "accepted", "new text"), pd(2, "rejected")], {"plan_decisions[0].amendment"}),
    ],
)
def test_every_plan_item_is_decided_exactly_once(
    session: Session, plan_decisions: list[PlanDecisionEntry], expected: set[str]
) -> None:
    case, conference = planned(session, ["Find a flat", "Weekly call"])
    with pytest.raises(Refusal) as caught:
        decide(session, case, conference, plan_decisions=plan_decisions)
    assert fields(caught) == expected
    assert all(p.outcome is None for p in plan_items(session, conference_id=conference.id))  # type: ignore[arg-type]
    assert conference.phase == Phase.decision


@pytest.mark.parametrize(
    ("actions", "next_review_in_days", "expected"),
    [
        ([action("psd-wien")], 84, {"actions[0].owner_agency"}),
        ([action("no-such-agency")], 84, {"actions[0].owner_agency"}),
        ([action(due_in_days=0)], 84, {"actions[0].due_on"}),
        ([action(), action(due_in_days=-3)], 84, {"actions[1].due_on"}),
        ([action()], 0, {"next_review_on"}),
        ([action()], -7, {"next_review_on"}),
        (
            [action("psd-wien", 0)],
            0,
            {"actions[0].owner_agency", "actions[0].due_on", "next_review_on"},
        ),
    ],
)
def test_decision_action_rules_and_nothing_written_on_refusal(
    session: Session, actions: list[ActionEntry], next_review_in_days: int, expected: set[str]
) -> None:
    case, conference = planned(session, ["Find a flat"])
    with pytest.raises(Refusal) as caught:
        decide(
            session,
            case,
            conference,
            plan_decisions=[pd(1, "accepted")],
            decisions=["A further decision"],
            actions=actions,
            next_review_on=TODAY + timedelta(days=next_review_in_days),
        )
    assert fields(caught) == expected
    assert count(session, ActionItem, case_id=case.id) == 0
    assert count(session, PlanItem, conference_id=conference.id) == 1
    assert plan_items(session, conference_id=conference.id)[0].outcome is None  # type: ignore[arg-type]
    assert conference.phase == Phase.decision


def test_a_decision_sets_the_next_conference_or_closes_the_case(session: Session) -> None:
    case, conference = planned(session, ["Find a flat"])
    with pytest.raises(Refusal) as caught:
        decide(session, case, conference, plan_decisions=[pd(1, "accepted")], next_review_on=None)
    assert {p.field: p.reason for p in caught.value.problems} == {
        "next_review_on": "required, unless the case closes (close_reason)"
    }
    assert plan_items(session, conference_id=conference.id)[0].outcome is None  # type: ignore[arg-type]
    # Closing: the pre-filled date, even a past one, is not used and refuses nothing.
    decide(
        session,
        case,
        conference,
        plan_decisions=[pd(1, "accepted")],
        next_review_on=TODAY - timedelta(days=1),
        closes=True,
    )
    assert plan_items(session, conference_id=conference.id)[0].outcome == "accepted"  # type: ignore[arg-type]


def test_lead_owns_actions_in_a_social_network_conference(session: Session) -> None:
    case, conference = planned(session, ["Find a flat"])
    ids = decide(
        session,
        case,
        conference,
        plan_decisions=[pd(1, "accepted")],
        actions=[action("neustart-wien")],
    )
    assert len(ids) == 1


def test_empty_decision_is_refused(session: Session) -> None:
    case = new_case(session)
    conference = new_conference(session, case=case, phase=Phase.decision)
    with pytest.raises(Refusal) as caught:
        decide(session, case, conference)
    assert fields(caught) == {"decisions"}


def test_decision_before_the_information_phase_is_over_is_refused(session: Session) -> None:
    case = new_case(session)
    conference = new_conference(session, case=case)  # still in its information phase
    with pytest.raises(Refusal) as caught:
        decide(session, case, conference, decisions=["Go ahead"], actions=[action()])
    assert fields(caught) == {"phase"}
    assert count(session, ActionItem, case_id=case.id) == 0
    assert count(session, PlanItem, conference_id=conference.id) == 0


def test_security_conference_decision_without_family_plan(session: Session) -> None:
    case = new_case(session)
    conference = new_conference(session, case=case, phase=Phase.decision)
    ids = decide(session, case, conference, decisions=["Monitor"], actions=[action("dsn")])
    assert count(session, ActionItem, case_id=case.id) == len(ids) == 1
    assert [p.drafted_by for p in plan_items(session, conference_id=conference.id)] == [Role.lead]  # type: ignore[arg-type]


# --- audience -------------------------------------------------------------------------------


GENERIC = load_profile("generic")
S, P, R = Classification.shared, Classification.professional, Classification.restricted


@pytest.mark.parametrize(
    ("role", "kinds", "agency_clearance", "conference_type", "expected"),
    [
        # Client and family: shared only, whatever the intermediary agency's clearance.
        (Role.client, ["security_service"], R, ConferenceType.security, {S}),
        (Role.family, ["cso"], S, ConferenceType.social_network, {S}),
        # Kinds the profile does not list get professional, capped by the directory.
        (Role.core, ["prison"], R, ConferenceType.security, {S, P}),
        (Role.core, ["migrant_charity"], S, ConferenceType.social_network, {S}),
        # The security service: restricted in a security conference only, if the directory agrees.
        (Role.core, ["security_service"], R, ConferenceType.security, {S, P, R}),
        (Role.core, ["security_service"], P, ConferenceType.security, {S, P}),
        (Role.lead, ["police"], R, ConferenceType.social_network, {S, P}),
        # Several kinds: the highest grant among them.
        (Role.core, ["cso", "police"], R, ConferenceType.security, {S, P, R}),
    ],
)
def test_audience_examples(
    role: Role,
    kinds: list[str],
    agency_clearance: Classification,
    conference_type: ConferenceType,
    expected: set[Classification],
) -> None:
    allowed = audience(
        role=role,
        conference_type=conference_type,
        profile=GENERIC,
        kinds=kinds,
        agency_clearance=agency_clearance,
    )
    assert allowed == expected


def test_a_profile_may_lower_a_kind_to_shared() -> None:
    data = GENERIC.model_dump(mode="json")
    data["clearance"] = {"social_network": {"mentor": "shared"}}
    lowered = Profile.model_validate(data)

    def mentor(conference_type: ConferenceType, kinds: list[str]) -> set[Classification]:
        return audience(
            role=Role.core,
            conference_type=conference_type,
            profile=lowered,
            kinds=kinds,
            agency_clearance=P,
        )

    assert mentor(ConferenceType.social_network, ["mentor"]) == {S}
    # Another kind of the same agency is not lowered: the agency holds that role too.
    assert mentor(ConferenceType.social_network, ["mentor", "school"]) == {S, P}
    assert mentor(ConferenceType.security, ["mentor"]) == {S, P}


@settings(max_examples=100, deadline=None)
@given(
    role=st.sampled_from(Role),
    kinds=st.lists(st.sampled_from(AgencyKind), max_size=3, unique=True),
    agency_clearance=st.sampled_from(Classification),
    conference_type=st.sampled_from(ConferenceType),
)
def test_audience_never_leaks(
    role: Role,
    kinds: list[AgencyKind],
    agency_clearance: Classification,
    conference_type: ConferenceType,
) -> None:
    allowed = audience(
        role=role,
        conference_type=conference_type,
        profile=GENERIC,
        kinds=kinds,
        agency_clearance=agency_clearance,
    )
    assert Classification.shared in allowed
    if role in (Role.client, Role.family):
        assert allowed == {Classification.shared}
    if Classification.restricted in allowed:
        assert conference_type == ConferenceType.security
        assert agency_clearance == Classification.restricted
        assert role in PROFESSIONAL_ROLES
        assert {"security_service", "police", "prosecution"} & set(kinds)
    if Classification.professional in allowed:
        assert agency_clearance != Classification.shared


def test_client_and_family_are_recorded_with_the_phases_they_attend(session: Session) -> None:
    conference = new_conference(session, ConferenceType.social_network)
    rules = {
        p.role: p.rule
        for p in session.exec(select(Participant).where(Participant.conference_id == conference.id))
    }
    assert rules["client"] == (
        "client of a social-network conference (family_only, decision), invited through "
        "neustart-wien"
    )
    assert rules["family"].startswith("family of a social-network conference (family_only, ")
