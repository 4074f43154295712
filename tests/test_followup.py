"""Follow-up notices that fall due with time: reminders, due and overdue actions, reviews."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, col, func, select

from models.record.tables import ActionItem, Agency, Case, Conference, Notification, Review
from models.rules.actions import ActionUpdate, review_open_actions
from models.rules.cases import close_case
from models.rules.conference import open_conference
from models.rules.followup import queue_due_notices
from models.rules.participants import record_participants
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    ActionStatus,
    ClosureReason,
    ConferenceKind,
    ConferenceType,
    Role,
)
from tests.test_conference_rules import new_case

pytestmark = pytest.mark.database

NOW = datetime(2034, 1, 15, 8, 0, tzinfo=UTC)
TODAY = NOW.date()
LEAD = timedelta(hours=48)
DUE_SOON = timedelta(days=7)

PROPOSALS = [
    Proposal("neustart-wien", Role.lead, "test: lead"),
    Proposal("jva-wien", Role.core, "test: core"),
]


def agency_id(session: Session, code: str) -> int:
    agency = session.exec(select(Agency).where(Agency.code == code)).one()
    assert agency.id is not None
    return agency.id


def setup(
    session: Session, file_number: str, *, starts_in: timedelta = timedelta(days=20)
) -> tuple[Case, Conference]:
    """A case with a social-network conference: neustart-wien lead, jva-wien core, client, family."""
    case = new_case(session, file_number)
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=ConferenceType.social_network,
        starts_at=NOW + starts_in,
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    record_participants(
        session,
        conference=conference,
        proposals=PROPOSALS,
        client_and_family=True,
        family_involved=True,
        intermediary_code="neustart-wien",
    )
    return case, conference


def add_action(
    session: Session,
    case: Case,
    conference: Conference,
    *,
    owner: str = "jva-wien",
    due_on: date,
    status: ActionStatus = ActionStatus.open,
) -> ActionItem:
    action = ActionItem(
        case_id=case.id,  # type: ignore[arg-type]
        conference_id=conference.id,  # type: ignore[arg-type]
        owner_agency_id=agency_id(session, owner),
        description="Arrange a housing appointment",
        due_on=due_on,
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )
    session.add(action)
    session.flush()
    return action


def sweep(session: Session, now: datetime = NOW) -> list[int]:
    return queue_due_notices(session, now=now, reminder_lead=LEAD, due_soon=DUE_SOON)


def notices(session: Session, case: Case) -> list[tuple[str, str, str, str]]:
    """(event, recipient agency code, role, channel) of the case's outbox rows, sorted."""
    rows = session.exec(
        select(Notification, Agency)
        .where(Notification.case_id == case.id)
        .where(col(Notification.recipient_agency_id) == col(Agency.id))
    ).all()
    return sorted((n.event, a.code, str(n.recipient_role), n.channel) for n, a in rows)


def ids_of(session: Session, case: Case) -> list[int]:
    rows = session.exec(select(Notification).where(Notification.case_id == case.id)).all()
    return sorted(r.id for r in rows if r.id is not None)


def count(session: Session, case: Case) -> int:
    return session.exec(
        select(func.count()).select_from(Notification).where(Notification.case_id == case.id)
    ).one()


# --- reminders ------------------------------------------------------------------------------


def test_reminder_per_professional_participant_and_channel(session: Session) -> None:
    case, conference = setup(session, "FU-REM-1", starts_in=timedelta(hours=24))
    ids = sweep(session)
    assert notices(session, case) == [
        ("reminder", "jva-wien", "core", "jva-wien"),
        ("reminder", "neustart-wien", "lead", "neustart-wien"),
        ("reminder", "neustart-wien", "lead", "neustart-wien-chat"),
    ]
    assert set(ids_of(session, case)) <= set(ids)
    # client and family (reached through neustart-wien) get no reminder, not even a hand-over
    roles = {r[2] for r in notices(session, case)}
    assert roles.isdisjoint({Role.client, Role.family})
    assert all(
        n.conference_id == conference.id
        for n in session.exec(select(Notification).where(Notification.case_id == case.id))
    )


def test_reminder_lead_boundary_is_inclusive(session: Session) -> None:
    case, _ = setup(session, "FU-REM-2", starts_in=LEAD)
    sweep(session)
    assert [n[0] for n in notices(session, case)] == ["reminder"] * 3


@pytest.mark.parametrize("starts_in", [LEAD + timedelta(minutes=1), timedelta(days=20)])
def test_no_reminder_for_a_conference_starting_later(
    session: Session, starts_in: timedelta
) -> None:
    case, _ = setup(session, "FU-REM-3", starts_in=starts_in)
    sweep(session)
    assert notices(session, case) == []


def test_no_reminder_for_a_released_conference(session: Session) -> None:
    case, conference = setup(session, "FU-REM-4", starts_in=timedelta(hours=24))
    conference.released_at = NOW - timedelta(minutes=5)
    session.add(conference)
    session.flush()
    sweep(session)
    assert notices(session, case) == []


def test_no_reminder_for_a_conference_that_has_started(session: Session) -> None:
    case, _ = setup(session, "FU-REM-5", starts_in=timedelta(hours=1))
    sweep(session, NOW + timedelta(hours=2))
    assert notices(session, case) == []


# --- actions --------------------------------------------------------------------------------


def test_action_due_soon_goes_to_its_owner(session: Session) -> None:
    case, conference = setup(session, "FU-ACT-1")
    action = add_action(session, case, conference, due_on=TODAY + timedelta(days=3))
    sweep(session)
    assert notices(session, case) == [("action_due_soon", "jva-wien", "core", "jva-wien")]
    row = session.exec(select(Notification).where(Notification.case_id == case.id)).one()
    assert row.detail == {"action_id": action.id}


@pytest.mark.parametrize(
    ("due_in", "expected"),
    [
        (0, ["action_due_soon"]),  # due today: not yet overdue
        (DUE_SOON.days, ["action_due_soon"]),  # the last day within due_soon
        (DUE_SOON.days + 1, []),
    ],
)
def test_due_soon_boundaries(session: Session, due_in: int, expected: list[str]) -> None:
    case, conference = setup(session, "FU-ACT-2")
    add_action(session, case, conference, due_on=TODAY + timedelta(days=due_in))
    sweep(session)
    assert [n[0] for n in notices(session, case)] == expected


def test_overdue_action_goes_to_owner_and_escalates_to_the_lead(session: Session) -> None:
    case, conference = setup(session, "FU-ACT-3")
    add_action(session, case, conference, due_on=TODAY - timedelta(days=1))
    sweep(session)
    assert notices(session, case) == [
        ("action_escalation", "neustart-wien", "lead", "neustart-wien"),
        ("action_escalation", "neustart-wien", "lead", "neustart-wien-chat"),
        ("action_overdue", "jva-wien", "core", "jva-wien"),
    ]


@pytest.mark.parametrize(
    "status", [ActionStatus.done, ActionStatus.not_done, ActionStatus.carried_over]
)
def test_actions_no_longer_open_get_nothing(session: Session, status: ActionStatus) -> None:
    case, conference = setup(session, "FU-ACT-4")
    add_action(session, case, conference, due_on=TODAY - timedelta(days=2), status=status)
    add_action(session, case, conference, due_on=TODAY + timedelta(days=2), status=status)
    sweep(session)
    assert notices(session, case) == []


def test_carried_over_action_is_noticed_again_for_its_new_date(session: Session) -> None:
    case, conference = setup(session, "FU-ACT-5")
    action = add_action(session, case, conference, due_on=TODAY - timedelta(days=1))
    sweep(session)
    assert count(session, case) == 3  # overdue + escalation on two channels

    review_open_actions(
        session,
        case_id=case.id,  # type: ignore[arg-type]
        updates=[
            ActionUpdate(
                action=1,
                status=ActionStatus.carried_over,
                new_due_on=TODAY + timedelta(days=2),
            )
        ],
        today=TODAY,
        now=NOW,
    )
    assert action.status == ActionStatus.open and action.due_on == TODAY + timedelta(days=2)
    sweep(session)
    assert [n for n in notices(session, case) if n[0] == "action_due_soon"] == [
        ("action_due_soon", "jva-wien", "core", "jva-wien")
    ]
    assert count(session, case) == 4

    # the new date passes too: overdue and escalation again, for the new date
    later = NOW + timedelta(days=3)
    sweep(session, later)
    events = [n[0] for n in notices(session, case)]
    assert events.count("action_overdue") == 2
    assert events.count("action_escalation") == 4
    assert count(session, case) == 7
    sweep(session, later)
    assert count(session, case) == 7


# --- reviews --------------------------------------------------------------------------------


def add_review(session: Session, case: Case, *, due_in: timedelta, cycle: int = 2) -> Review:
    review = Review(
        case_id=case.id,  # type: ignore[arg-type]
        cycle=cycle,
        due_at=NOW + due_in,
        idempotency_key=f"{case.reference}/review/c{cycle}/v1",
        created_at=NOW,
    )
    session.add(review)
    session.flush()
    return review


def test_review_due_goes_to_the_previous_conference_lead(session: Session) -> None:
    case, conference = setup(session, "FU-REV-1")
    conference.released_at = NOW - timedelta(days=30)
    session.add(conference)
    add_review(session, case, due_in=timedelta(days=3))
    sweep(session)
    assert notices(session, case) == [
        ("review_due", "neustart-wien", "lead", "neustart-wien"),
        ("review_due", "neustart-wien", "lead", "neustart-wien-chat"),
    ]
    rows = session.exec(select(Notification).where(Notification.case_id == case.id)).all()
    assert {r.conference_id for r in rows} == {conference.id}


@pytest.mark.parametrize(
    "due_in", [DUE_SOON + timedelta(minutes=1), timedelta(days=60), -timedelta(hours=1)]
)
def test_no_review_due_outside_the_window(session: Session, due_in: timedelta) -> None:
    case, conference = setup(session, "FU-REV-2")
    conference.released_at = NOW - timedelta(days=30)
    session.add(conference)
    add_review(session, case, due_in=due_in)
    sweep(session)
    assert notices(session, case) == []


# --- once, and only for open cases ----------------------------------------------------------


def everything_due(session: Session, file_number: str) -> Case:
    case, conference = setup(session, file_number, starts_in=timedelta(hours=24))
    add_action(session, case, conference, due_on=TODAY + timedelta(days=2))
    add_action(session, case, conference, due_on=TODAY - timedelta(days=2))
    add_review(session, case, due_in=timedelta(days=3))
    return case


def test_a_second_sweep_at_the_same_now_queues_nothing_new(session: Session) -> None:
    case = everything_due(session, "FU-ONCE-1")
    first = sweep(session)
    mine = ids_of(session, case)
    # 3 reminders, 1 due soon, 1 overdue, 2 escalations, 2 review_due
    assert len(mine) == 9
    assert set(mine) <= set(first)
    second = sweep(session)
    assert sorted(second) == sorted(first)
    assert count(session, case) == 9
    assert ids_of(session, case) == mine


def test_a_closed_case_gets_nothing(session: Session) -> None:
    case = everything_due(session, "FU-CLOSED-1")
    close_case(
        session,
        case=case,
        reason=ClosureReason.plan_completed,
        actor_id=None,
        note=None,
        now=NOW,
    )
    # close_case cancels the scheduled review; schedule it again to prove the case status counts
    review = session.exec(select(Review).where(Review.case_id == case.id)).one()
    review.status = "scheduled"  # type: ignore[assignment]
    session.add(review)
    session.flush()
    sweep(session)
    assert notices(session, case) == []
