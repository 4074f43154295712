"""Action review: every open action is reviewed exactly once, with a reason or a new date."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from models.errors import Refusal
from models.record.tables import ActionItem, Case, Conference
from models.rules.actions import ActionUpdate, review_open_actions
from models.rules.cases import agency_by_code
from models.rules.conference import open_actions
from models.vocabulary import ActionStatus, NotDoneReason, Phase
from tests.test_conference_rules import new_case, new_conference

pytestmark = pytest.mark.database

NOW = datetime(2034, 6, 1, 9, 0, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def case_with_actions(session: Session) -> tuple[Case, list[ActionItem]]:
    """A case with three open actions (listed as 1, 2, 3 by due date) and one already done."""
    case = new_case(session, "ACT-1")
    conference: Conference = new_conference(session, case=case, phase=Phase.release)
    agency = agency_by_code(session, "jva-wien")
    assert agency is not None and agency.id is not None
    owner = agency.id
    rows = [
        ActionItem(
            case_id=case.id,  # type: ignore[arg-type]
            conference_id=conference.id,  # type: ignore[arg-type]
            owner_agency_id=owner,
            description=f"Action due in {days} days",
            due_on=TODAY + timedelta(days=days),
            status=status,
        )
        for days, status in [
            (-10, ActionStatus.open),
            (-1, ActionStatus.done),
            (-5, ActionStatus.open),
            (0, ActionStatus.open),
        ]
    ]
    session.add_all(rows)
    session.flush()
    ordered = [rows[0], rows[2], rows[3]]  # open ones, by due date
    return case, ordered


def review(session: Session, case: Case, updates: list[ActionUpdate]) -> list[int]:
    assert case.id is not None
    return review_open_actions(session, case_id=case.id, updates=updates, today=TODAY, now=NOW)


def fields(caught: pytest.ExceptionInfo[Refusal]) -> set[str]:
    return {p.field for p in caught.value.problems}


def test_review_applies_each_outcome(
    session: Session, case_with_actions: tuple[Case, list[ActionItem]]
) -> None:
    case, (first, second, third) = case_with_actions
    new_due = TODAY + timedelta(weeks=4)
    ids = review(
        session,
        case,
        [
            ActionUpdate(action=3, status="carried_over", new_due_on=new_due),
            ActionUpdate(action=1, status="done"),
            ActionUpdate(action=2, status="not_done", not_done_reason="no_capacity"),
        ],
    )
    assert ids == [first.id, second.id, third.id]
    session.expire_all()
    done, not_done, carried = (session.get(ActionItem, a.id) for a in (first, second, third))
    assert done is not None and not_done is not None and carried is not None
    assert (done.status, done.status_reason) == (ActionStatus.done, None)
    assert (not_done.status, not_done.status_reason) == (
        ActionStatus.not_done,
        NotDoneReason.no_capacity,
    )
    assert (carried.status, carried.due_on, carried.status_reason) == (
        ActionStatus.open,
        new_due,
        ActionStatus.carried_over,
    )
    assert all(a.updated_at == NOW for a in (done, not_done, carried))
    assert [a.id for a in open_actions(session, case_id=case.id)] == [carried.id]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        ([], {"updates"}),
        ([{"action": 1, "status": "done"}, {"action": 2, "status": "done"}], {"updates"}),
        (
            [
                {"action": 1, "status": "done"},
                {"action": 1, "status": "done"},
                {"action": 2, "status": "done"},
                {"action": 3, "status": "done"},
            ],
            {"updates[1].action"},
        ),
        (
            [
                {"action": 1, "status": "done"},
                {"action": 2, "status": "done"},
                {"action": 3, "status": "done"},
                {"action": 4, "status": "done"},
            ],
            {"updates[3].action"},
        ),
        (
            [
                {"action": 1, "status": "not_done"},
                {"action": 2, "status": "done"},
                {"action": 3, "status": "done"},
            ],
            {"updates[0].not_done_reason"},
        ),
        (
            [
                {"action": 1, "status": "done"},
                {"action": 2, "status": "carried_over"},
                {"action": 3, "status": "done"},
            ],
            {"updates[1].new_due_on"},
        ),
        (
            [
                {"action": 1, "status": "done"},
                {"action": 2, "status": "done"},
                {"action": 3, "status": "carried_over", "new_due_on": TODAY},
            ],
            {"updates[2].new_due_on"},
        ),
        (
            [
                {"action": 1, "status": "open"},
                {"action": 2, "status": "done"},
                {"action": 3, "status": "done"},
            ],
            {"updates[0].status"},
        ),
    ],
)
def test_review_refusals_change_nothing(
    session: Session,
    case_with_actions: tuple[Case, list[ActionItem]],
    updates: list[dict[str, object]],
    expected: set[str],
) -> None:
    case, actions = case_with_actions
    before = [(a.id, a.status, a.due_on) for a in actions]
    with pytest.raises(Refusal) as caught:
        review(session, case, [ActionUpdate(**u) for u in updates])  # type: ignore[arg-type]
    assert fields(caught) == expected
    session.expire_all()
    after = [(a.id, a.status, a.due_on) for a in open_actions(session, case_id=case.id)]  # type: ignore[arg-type]
    assert after == before


def test_nothing_open_nothing_to_review(session: Session) -> None:
    case = new_case(session, "ACT-2")
    assert review(session, case, []) == []


def test_done_action_does_not_carry_a_not_done_reason(
    session: Session, case_with_actions: tuple[Case, list[ActionItem]]
) -> None:
    case, (first, _second, _third) = case_with_actions
    updates = [
        ActionUpdate(action=1, status="done", not_done_reason="client_declined"),
        ActionUpdate(action=2, status="done"),
        ActionUpdate(action=3, status="done"),
    ]
    with pytest.raises(Refusal) as caught:
        review(session, case, updates)  # type: ignore[arg-type]
    assert fields(caught) == {"updates[0].not_done_reason"}
    session.expire_all()
    unchanged = session.get(ActionItem, first.id)
    assert unchanged is not None
    assert (unchanged.status, unchanged.status_reason) == (ActionStatus.open, None)
