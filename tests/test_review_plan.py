"""Moving and cancelling a scheduled review, runs cancelled outside caseconf, and a review that
falls due while the serving process is down. Cases are written straight into the database at the
end of their first cycle; everything after that goes through a real Prefect server and the
serving process."""

import time
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from prefect.states import State
from sqlmodel import Session, col, select

from models.errors import Refusal
from models.record.database import RecordSession, get_engine, session_scope
from models.record.tables import AuditEvent, Case, Conference, Notification, Review
from models.rules import review
from models.rules.cases import close_case, refer_case
from models.rules.conference import open_conference
from models.rules.participants import record_participants
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    ClosureReason,
    ConferenceKind,
    ConferenceType,
    Need,
    Phase,
    ReviewChangeKind,
    ReviewStatus,
    Role,
    Stage,
)
from tasks.housekeeping import reconcile_reviews
from tasks.release import schedule_review
from tasks.reviews import start_review_run
from tests.prefect_harness import FINAL, Walk, read_run, text_of, wait_for

# The flow tests run on SQLite only; the rules (first test) on PostgreSQL too.
pytestmark = pytest.mark.flow

REP = "magistrat-wien-1"
VIENNA = "Europe/Vienna"
# Lead and coordinator are told of every change; dsn only takes part. All reached by email only.
PROPOSALS = [
    Proposal("jva-wien", Role.lead, "test: lead"),
    Proposal("magistrat-wien", Role.coordinator, "test: coordinator"),
    Proposal("dsn", Role.core, "test: core"),
]


def between_cycles(file_number: str, *, phase: Phase = Phase.release) -> tuple[int, str, int]:
    """A case whose first conference was just released; returns case id, reference, conference id."""
    now = datetime.now(UTC)
    with session_scope() as session:
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number=file_number,
            stage=Stage.custody,
            needs=[Need.housing],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="RVP",
            flow_run_id=None,
            now=now,
        )
        conference = open_conference(
            session,
            case=case,
            kind=ConferenceKind.first,
            conference_type=ConferenceType.security,
            starts_at=now + timedelta(days=1),
            time_zone=VIENNA,
            location="Room 1",
            now=now,
        )
        record_participants(
            session,
            conference=conference,
            proposals=PROPOSALS,
            client_and_family=False,
            family_involved=False,
            intermediary_code=None,
        )
        conference.phase = Phase.release
        conference.released_at = now
        case.phase = phase
        session.add_all([case, conference])
        session.flush()
        assert case.id is not None and conference.id is not None
        return case.id, case.reference, conference.id


def scheduled_case(file_number: str, in_days: int = 60) -> tuple[int, str]:
    """A case at the end of its first cycle with its review scheduled as release does it."""
    case_id, reference, conference_id = between_cycles(file_number)
    schedule_review.fn(case_id, conference_id, date.today() + timedelta(days=in_days))
    return case_id, reference


def db(database: str) -> Session:
    return RecordSession(get_engine(database), expire_on_commit=False)


def reviews_of(database: str, case_id: int) -> dict[int, Review]:
    with db(database) as s:
        return {r.version: r for r in s.exec(select(Review).where(Review.case_id == case_id))}


def case_row(database: str, case_id: int) -> Case:
    with db(database) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case


def audit_of(database: str, case_id: int) -> list[AuditEvent]:
    with db(database) as s:
        query = select(AuditEvent).where(AuditEvent.case_id == case_id)
        return list(s.exec(query.order_by(col(AuditEvent.id))))


def notices(database: str, case_id: int, event: str) -> list[Notification]:
    with db(database) as s:
        query = select(Notification).where(
            Notification.case_id == case_id, Notification.event == event
        )
        return list(s.exec(query))


def runs_of(reference: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{reference}"]))
        )


def change(reference: str, action: str, on: date | None = None, reason: str = "other"):
    parameters = {
        "case_reference": reference,
        "action": action,
        "reason": reason,
        "acting_representative": REP,
    }
    if on is not None:
        parameters["review_on"] = on.isoformat()
    return run_deployment("case-review-plan/change", parameters={"change": parameters}, timeout=0)


def completed(run) -> None:
    finished = wait_for(run.id, FINAL)
    assert finished.state.type == StateType.COMPLETED, finished.state.message


@pytest.mark.database
def test_the_rules_refuse_with_field_and_reason(session: Session) -> None:
    now = datetime(2034, 3, 1, 12, 0, tzinfo=UTC)
    case = refer_case(
        session,
        referring_agency="neustart-wien",
        file_number="RVP-RULES",
        stage=Stage.custody,
        needs=[],
        profile="generic",
        acting_representative_code="neustart-wien-1",
        reference_prefix="RVR",
        flow_run_id=None,
        now=now,
    )

    def refused(action: ReviewChangeKind, on: date | None) -> set[str]:
        with pytest.raises(Refusal) as caught:
            review.check_review_change(session, case=case, action=action, on=on, now=now)
        return {str(p) for p in caught.value.problems}

    later = date(2034, 5, 1)
    assert refused(ReviewChangeKind.move, later) == {
        "case_reference: the case is in the middle of conference cycle 1 (phase preparation); "
        "its review is scheduled when the decision is released"
    }
    case.phase = Phase.review_scheduled
    assert refused(ReviewChangeKind.cancel, None) == {
        "action: no review is scheduled for this case to cancel"
    }
    # Today and earlier are refused in the conference's zone (13:00 in Vienna on 1 March).
    for on in (date(2034, 3, 1), date(2033, 12, 24)):
        assert refused(ReviewChangeKind.move, on) == {"review_on: must be after today"}
    assert refused(ReviewChangeKind.move, None) == {
        "review_on: give the new date of the review to move it"
    }
    review.check_review_change(session, case=case, action=ReviewChangeKind.move, on=later, now=now)

    # A move plans version 1 (nothing was scheduled); the same date again changes nothing.
    due = review.review_due_at(session, case=case, on=later, now=now)
    assert due == datetime(2034, 5, 1, 8, 0, tzinfo=UTC)  # 10:00 in Vienna, summer time
    superseded, first = review.replan_review(
        session, case=case, due_at=due, now=now, actor_id=None, reason="other"
    )
    assert superseded == [] and first.version == 1
    assert review.replan_review(
        session, case=case, due_at=due, now=now, actor_id=None, reason="other"
    ) == ([], first)
    superseded, second = review.replan_review(
        session, case=case, due_at=due + timedelta(days=7), now=now, actor_id=None, reason="other"
    )
    assert superseded == [first] and first.status == ReviewStatus.superseded
    assert second.idempotency_key == f"{case.reference}/review/c2/v2"
    assert refused(ReviewChangeKind.cancel, later) == {
        "review_on: leave empty to cancel; choose move to change the date"
    }
    close_case(session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=now)
    assert second.status == ReviewStatus.cancelled
    assert refused(ReviewChangeKind.cancel, None) == {"case_reference: this case is closed"}


def test_a_coordinator_moves_cancels_and_schedules_the_review_again(serving, database, mail):
    case_id, reference = scheduled_case("RVP-MOVE")
    [first] = reviews_of(database, case_id).values()
    assert read_run(UUID(first.flow_run_id)).state.type == StateType.SCHEDULED

    new_on = date.today() + timedelta(days=40)
    completed(change(reference, "move", new_on, reason="participants_unavailable"))
    rows = reviews_of(database, case_id)
    assert {v: r.status for v, r in rows.items()} == {1: "superseded", 2: "scheduled"}
    assert read_run(UUID(first.flow_run_id)).state.type == StateType.CANCELLED
    moved = read_run(UUID(rows[2].flow_run_id))
    assert moved.state.type == StateType.SCHEDULED
    assert moved.idempotency_key == f"{reference}/review/c2/v2"
    assert moved.name == f"{reference} review 1" and f"case:{reference}" in moved.tags
    assert moved.parameters == {"case_reference": reference, "cycle": 2}
    due = datetime.combine(new_on, review.REVIEW_START, tzinfo=ZoneInfo(VIENNA))
    assert rows[2].due_at == due
    assert moved.expected_start_time == due - review.PREPARATION_LEAD
    assert case_row(database, case_id).phase == Phase.review_scheduled
    [audited] = [e for e in audit_of(database, case_id) if e.action == "review.moved"]
    assert audited.justification == "participants_unavailable" and audited.actor_id is not None
    # Lead and coordinator are told, on their (email) channels, with the old and the new date.
    told = notices(database, case_id, "review_moved")
    assert sorted((n.channel, n.recipient_role, n.status) for n in told) == [
        ("jva-wien", "lead", "sent"),
        ("magistrat-wien", "coordinator", "sent"),
    ]
    messages = [m for m in mail.messages() if reference in m["Subject"]]
    assert sorted(m["X-RcptTo"] for m in messages) == [
        "jva-wien@demo.invalid",
        "magistrat-wien@demo.invalid",
    ]
    text = text_of(messages[0])
    assert "Überprüfung verlegt" in text and "RVP-MOVE" not in text
    assert "Bisher geplant für" in text and "Jetzt geplant für" in text

    completed(change(reference, "cancel", reason="review_not_needed"))
    rows = reviews_of(database, case_id)
    assert rows[2].status == "cancelled"
    assert read_run(UUID(rows[2].flow_run_id)).state.type == StateType.CANCELLED
    assert case_row(database, case_id).phase == Phase.review_cancelled
    assert "review.cancelled" in [e.action for e in audit_of(database, case_id)]
    assert {n.status for n in notices(database, case_id, "review_cancelled")} == {"sent"}
    assert len(notices(database, case_id, "review_cancelled")) == 2

    # From there a move schedules a review again, as version 3.
    completed(change(reference, "move", new_on + timedelta(days=1)))
    rows = reviews_of(database, case_id)
    assert [rows[v].status for v in (1, 2, 3)] == ["superseded", "cancelled", "scheduled"]
    again = read_run(UUID(rows[3].flow_run_id))
    assert again.state.type == StateType.SCHEDULED
    assert again.idempotency_key == f"{reference}/review/c2/v3"
    assert case_row(database, case_id).phase == Phase.review_scheduled
    scheduled = [r for r in runs_of(reference) if r.state.type == StateType.SCHEDULED]
    assert [r.id for r in scheduled] == [again.id]


def test_refused_changes_leave_everything_as_it_was(serving, database):
    open_id, open_reference = scheduled_case("RVP-REFUSE-1")
    closed_id, closed_reference = scheduled_case("RVP-REFUSE-2")
    with session_scope() as session:
        closed = session.get(Case, closed_id)
        assert closed is not None
        close_case(
            session,
            case=closed,
            reason=ClosureReason.other,
            actor_id=None,
            note=None,
            now=datetime.now(UTC),
        )

    def state(case_id: int, reference: str) -> tuple:
        return (
            case_row(database, case_id).phase,
            {v: (r.status, r.flow_run_id) for v, r in reviews_of(database, case_id).items()},
            len(audit_of(database, case_id)),
            len(notices(database, case_id, "review_moved")),
            sorted((str(r.id), r.state.type) for r in runs_of(reference)),
        )

    before = state(open_id, open_reference), state(closed_id, closed_reference)
    past = change(open_reference, "move", date.today())
    closed_move = change(closed_reference, "move", date.today() + timedelta(days=30))
    for run, reason in (
        (past, "review_on: must be after today"),
        (closed_move, "case_reference: this case is closed"),
    ):
        finished = wait_for(run.id, FINAL)
        assert finished.state.type == StateType.FAILED
        assert reason in finished.state.message
    assert (state(open_id, open_reference), state(closed_id, closed_reference)) == before


def test_a_review_run_cancelled_in_prefect_is_noticed_and_the_case_brought_in_line(
    serving, database, mail
):
    cancelled_id, cancelled_reference = scheduled_case("RVP-UI-1")
    deleted_id, _ = scheduled_case("RVP-UI-2")
    waiting_id, waiting_reference, _ = between_cycles("RVP-UI-3", phase=Phase.information)
    [cancelled] = reviews_of(database, cancelled_id).values()
    [deleted] = reviews_of(database, deleted_id).values()
    # The case's own run, cancelled by hand while it waits.
    own = run_deployment(
        "case-review/review",
        parameters={"case_reference": waiting_reference, "cycle": 1},
        scheduled_time=datetime.now(UTC) + timedelta(days=1),
        timeout=0,
    )
    with session_scope() as session:
        waiting = session.get(Case, waiting_id)
        assert waiting is not None
        waiting.current_flow_run_id = str(own.id)
        session.add(waiting)
    with get_client(sync_client=True) as client:
        # As the UI's Cancel button does: the server turns it into Cancelled at once.
        for run_id in (cancelled.flow_run_id, str(own.id)):
            client.set_flow_run_state(UUID(run_id), State(type=StateType.CANCELLING))
        client.delete_flow_run(UUID(deleted.flow_run_id))
    assert read_run(UUID(cancelled.flow_run_id)).state.type == StateType.CANCELLED

    noticed = reconcile_reviews(settle=timedelta(0))
    assert {cancelled_reference, waiting_reference} <= set(noticed)
    assert len(set(noticed) & {cancelled_reference, waiting_reference}) == 2
    for case_id in (cancelled_id, deleted_id):
        [row] = reviews_of(database, case_id).values()
        assert row.status == ReviewStatus.cancelled
        assert case_row(database, case_id).phase == Phase.review_cancelled
        assert [e.action for e in audit_of(database, case_id)][-1] == "review.cancelled_outside"
        [told] = notices(database, case_id, "review_run_cancelled")
        assert (told.channel, told.recipient_role) == ("magistrat-wien", "coordinator")
    assert case_row(database, waiting_id).phase == Phase.information  # it waits as it was
    assert [e.action for e in audit_of(database, waiting_id)][-1] == "case.run_cancelled"
    assert len(notices(database, waiting_id, "case_run_cancelled")) == 1

    # Noticed once: neither a second look nor the sweep (which looks too) repeats anything.
    audited = {c: len(audit_of(database, c)) for c in (cancelled_id, deleted_id, waiting_id)}
    assert not {cancelled_reference, waiting_reference} & set(
        reconcile_reviews(settle=timedelta(0))
    )
    completed(run_deployment("notifications-sweep/sweep", timeout=0))
    for case_id, event in (
        (cancelled_id, "review_run_cancelled"),
        (deleted_id, "review_run_cancelled"),
        (waiting_id, "case_run_cancelled"),
    ):
        assert [n.status for n in notices(database, case_id, event)] == ["sent"]
        assert len(audit_of(database, case_id)) == audited[case_id]
    subjects = [m["Subject"] for m in mail.messages() if cancelled_reference in m["Subject"]]
    assert subjects == [f"Überprüfung außerhalb von caseconf abgesagt: Fall {cancelled_reference}"]

    # A move schedules the review again.
    completed(change(cancelled_reference, "move", date.today() + timedelta(days=20)))
    assert case_row(database, cancelled_id).phase == Phase.review_scheduled


def test_a_review_due_while_serving_is_down_runs_once_when_it_is_back(serving, database):
    case_id, reference, _ = between_cycles("RVP-DOWN", phase=Phase.review_scheduled)
    serving.stop()
    try:
        now = datetime.now(UTC)
        with session_scope() as session:
            case = session.get(Case, case_id)
            assert case is not None
            # Due in 14 days and a few seconds: its run falls due a few seconds from now.
            _, planned = review.replan_review(
                session,
                case=case,
                due_at=now + review.PREPARATION_LEAD + timedelta(seconds=3),
                now=now,
                actor_id=None,
                reason="other",
            )
            review_id = planned.id
        assert review_id is not None
        # The rules never schedule a run less than a minute ahead: give them their "now".
        run_id = UUID(start_review_run(review_id, at=now - timedelta(minutes=1)))
        due = read_run(run_id).expected_start_time
        assert due <= now + timedelta(seconds=4)
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 1.5)
        assert read_run(run_id).state.type == StateType.SCHEDULED  # nobody ran it meanwhile
        assert case_row(database, case_id).cycle == 1
    finally:
        serving.start()

    walk = Walk(run_id)
    walk.waits_at("preparation")
    case = case_row(database, case_id)
    assert (case.cycle, case.phase) == (2, Phase.preparation)
    assert reviews_of(database, case_id)[1].status == ReviewStatus.started
    assert [r.id for r in runs_of(reference)] == [run_id]
    walk.answer(
        conference_type="security",
        starts_at=(datetime.now() + timedelta(days=10)).replace(hour=10, minute=0).isoformat(),
        time_zone=VIENNA,
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    walk.waits_at("stakeholders")
    with db(database) as s:
        cycles = [c.cycle for c in s.exec(select(Conference).where(Conference.case_id == case_id))]
    assert sorted(cycles) == [1, 2]
    assert [r.id for r in runs_of(reference)] == [run_id]
    # The run now waits for a form, holding no process: left as it is.
