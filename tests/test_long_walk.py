"""One case along the prison-exit continuum, through a real Prefect server, as coordinators drive it.

Custody -> pre-release (a release date schedules the pre-release conference) -> release (the
profile's follow-up replaces the scheduled review) -> three post-release reviews -> recall.
Time is never waited for: the rules get their "now" through the dates the coordinator types
(a release recorded as having happened 13 weeks less two days ago makes the follow-up due in two
days), so each next conference's run is scheduled a moment ahead. Every date is counted from the
day the walk began in Vienna, read once: a walk that runs past midnight keeps its dates, and the
next conferences are two days ahead, so they stay after "today" even then. Profile:
austria-neustart, security type.
"""

from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.schemas.objects import StateType
from prefect.deployments import run_deployment
from sqlmodel import Session, col, select

from models.record.database import RecordSession, get_engine
from models.record.tables import (
    ActionItem,
    Agency,
    Case,
    Conference,
    Notification,
    Participant,
    Review,
    StageChange,
)
from models.vocabulary import Phase, ReviewStatus
from tests.prefect_harness import FINAL, Walk, read_run, wait_for

pytestmark = pytest.mark.flow

REP = "neustart-wien-1"
FOLLOW_UP_WEEKS = 13  # austria-neustart: a follow-up conference about 3 months after release


# The day the walk began in Vienna, where its conferences meet; set once at its start.
BEGAN = {"today": datetime.now(ZoneInfo("Europe/Vienna")).date()}


@pytest.fixture(autouse=True)
def _walk_began() -> None:
    BEGAN["today"] = datetime.now(ZoneInfo("Europe/Vienna")).date()


def day(days: int = 0, weeks: int = 0) -> date:
    return BEGAN["today"] + timedelta(days=days, weeks=weeks)


def db(database: str) -> Session:
    return RecordSession(get_engine(database), expire_on_commit=False)


def coordinator_action(deployment: str, parameter: str, **values: object) -> None:
    """Start a coordinator's deployment as the UI does and wait for it to succeed."""
    values.setdefault("acting_representative", REP)
    run = run_deployment(deployment, parameters={parameter: values}, timeout=0)
    done = wait_for(run.id, FINAL)
    assert done.state is not None and done.state.type == StateType.COMPLETED, done.state


class Story:
    """What the database says about the case, read fresh each time."""

    def __init__(self, database: str, reference: str) -> None:
        self.database = database
        self.reference = reference

    def case(self) -> Case:
        with db(self.database) as s:
            return s.exec(select(Case).where(Case.reference == self.reference)).one()

    def codes(self) -> dict[int, str]:
        with db(self.database) as s:
            return {a.id: a.code for a in s.exec(select(Agency))}  # type: ignore[misc]

    def participants(self, cycle: int) -> dict[str, Participant]:
        codes = self.codes()
        with db(self.database) as s:
            conference = s.exec(
                select(Conference).where(
                    Conference.case_id == self.case().id, Conference.cycle == cycle
                )
            ).one()
            found = s.exec(select(Participant).where(Participant.conference_id == conference.id))
            return {codes[p.agency_id]: p for p in found if p.agency_id}

    def reviews(self, cycle: int) -> list[Review]:
        with db(self.database) as s:
            query = select(Review).where(Review.case_id == self.case().id, Review.cycle == cycle)
            return list(s.exec(query.order_by(col(Review.version))))

    def scheduled_run(self, cycle: int) -> UUID:
        """The run of the cycle's review in force (it may have started already: it is due)."""
        live = (ReviewStatus.scheduled, ReviewStatus.started)
        scheduled = [r for r in self.reviews(cycle) if r.status in live]
        assert len(scheduled) == 1, [(r.version, r.status) for r in self.reviews(cycle)]
        assert scheduled[0].flow_run_id
        return UUID(scheduled[0].flow_run_id)

    def actions(self) -> list[ActionItem]:
        with db(self.database) as s:
            query = select(ActionItem).where(ActionItem.case_id == self.case().id)
            return list(s.exec(query.order_by(col(ActionItem.id))))

    def messages(self, event: str, cycle: int | None = None) -> list[Notification]:
        with db(self.database) as s:
            query = select(Notification).where(
                Notification.case_id == self.case().id, Notification.event == event
            )
            found = list(s.exec(query))
            if cycle is None:
                return found
            ids = {
                c.id
                for c in s.exec(
                    select(Conference).where(
                        Conference.case_id == self.case().id, Conference.cycle == cycle
                    )
                )
            }
            return [n for n in found if n.conference_id in ids]

    def history(self) -> list[tuple[str, str, str]]:
        with db(self.database) as s:
            query = select(StageChange).where(StageChange.case_id == self.case().id)
            return [
                (h.from_stage, h.to_stage, h.reason)
                for h in s.exec(query.order_by(col(StageChange.id)))
            ]


def review_cycle(
    walk: Walk,
    story: Story,
    *,
    cycle: int,
    updates: list[dict[str, object]],
    actions: list[dict[str, object]],
    next_on: date | None,
) -> dict[str, Participant]:
    """Walk one review conference from preparation to release; returns who took part."""
    run = walk.waits_at("preparation")
    assert run.name == f"{story.reference} review {cycle - 1}"
    assert f"case:{story.reference}" in run.tags
    assert f"stage:{story.case().stage}" in run.tags
    walk.answer(
        conference_type="security",
        starts_at=datetime.combine(day(1), datetime.min.time()).replace(hour=10).isoformat(),
        time_zone="Europe/Vienna",
        location="magistrat-wien-room-1",
        acting_representative=REP,
    )
    walk.waits_at("stakeholders")
    walk.answer(acting_representative=REP)
    walk.waits_at("action-review")
    listed = walk.description()
    for action in story.actions():
        if action.status in ("open", "carried_over"):
            assert action.description in listed
    walk.answer(updates=updates, acting_representative=REP)
    walk.waits_at("information")
    walk.answer(
        contributions=[
            {
                "agency": "neustart-wien",
                "classification": "professional",
                "summary": f"Progress report for cycle {cycle}.",
            }
        ],
        acting_representative=REP,
    )
    walk.waits_at("decision")
    default = walk.schema()["properties"]["next_review_on"].get("default")
    answer: dict[str, object] = {
        "decisions": [f"Decision of cycle {cycle}"],
        "actions": actions,
        "acting_representative": REP,
    }
    answer["next_review_on"] = (next_on or date.fromisoformat(default)).isoformat()
    walk.answer(**answer)
    done = wait_for(walk.run_id, FINAL)
    assert done.state is not None and done.state.type == StateType.COMPLETED, done.state
    assert story.case().phase == Phase.review_scheduled
    participants = story.participants(cycle)
    invited = {n.recipient_agency_id for n in story.messages("invitation", cycle)}
    minuted = {n.recipient_agency_id for n in story.messages("minutes", cycle)}
    assert invited == minuted == {p.agency_id for p in participants.values()}
    return participants


def test_one_case_from_custody_through_release_and_three_reviews_to_recall(
    serving, database, mail
) -> None:
    # --- cycle 1, in custody: the security conference -----------------------------------------
    walk = Walk.refer("neustart-wien", stage="custody", profile="austria-neustart")
    walk.waits_at("referral")
    walk.answer(file_number="LONG-1", needs=["housing"], acting_representative=REP)
    run = walk.waits_at("preparation")
    story = Story(database, run.name)
    walk.answer(
        conference_type="security",
        starts_at=datetime.combine(day(7), datetime.min.time()).replace(hour=10).isoformat(),
        time_zone="Europe/Vienna",
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    walk.waits_at("stakeholders")
    walk.answer(acting_representative=REP)
    walk.waits_at("information")
    walk.answer(
        contributions=[{"agency": "dsn", "classification": "restricted", "pointer": "DSN file 12"}],
        acting_representative=REP,
    )
    walk.waits_at("decision")
    walk.answer(
        decisions=["Prepare for release"],
        actions=[
            {
                "owner_agency": "jva-wien",
                "description": "Vocational course",
                "due_on": str(day(30)),
            },
            {"owner_agency": "fsw-wohnen", "description": "Housing plan", "due_on": str(day(45))},
        ],
        next_review_on=str(day(90)),
        acting_representative=REP,
    )
    assert wait_for(walk.run_id, FINAL).state.type == StateType.COMPLETED
    in_custody = story.participants(1)
    assert {c: str(p.role) for c, p in in_custody.items()} == {
        "dsn": "lead",
        "jva-wien": "core",
        "neustart-wien": "core",
        "fsw-wohnen": "case_dependent",
        "sozialzentrum-wien": "case_dependent",
    }
    [first_review] = story.reviews(2)
    assert first_review.due_at.date() == day(90)

    # --- custody -> pre_release: the pre-release conference replaces the later review ----------
    release_on = day(3, weeks=12)  # austria-neustart: pre-release conference 12 weeks before
    coordinator_action(
        "case-stage/move",
        "change",
        case_reference=story.reference,
        to_stage="pre_release",
        reason="release_date_known",
        release_on=str(release_on),
    )
    old, new = story.reviews(2)
    assert old.status == ReviewStatus.superseded
    # Due within its preparation lead, the new review's run starts a moment (3 s) after the move:
    # on a busy machine it has already marked the review started.
    assert new.status in (ReviewStatus.scheduled, ReviewStatus.started)
    assert new.version == 2 and new.idempotency_key.endswith("/c2/v2")
    assert new.due_at.date() == day(3)
    assert read_run(UUID(old.flow_run_id)).state.type == StateType.CANCELLED  # type: ignore[arg-type]
    assert story.case().stage == "pre_release" and story.case().release_on == release_on

    # --- cycle 2: the pre-release conference -----------------------------------------------
    review_cycle(
        Walk(story.scheduled_run(2)),
        story,
        cycle=2,
        updates=[
            {"action": 1, "status": "done"},
            {"action": 2, "status": "carried_over", "new_due_on": str(day(60))},
        ],
        actions=[
            {"owner_agency": "neustart-wien", "description": "Release plan", "due_on": str(day(20))}
        ],
        next_on=None,  # the form's default: the follow-up after the expected release
    )
    [planned] = [r for r in story.reviews(3) if r.status == ReviewStatus.scheduled]
    assert planned.due_at.date() == release_on + timedelta(weeks=FOLLOW_UP_WEEKS)
    actions = {a.description: a for a in story.actions()}
    assert actions["Vocational course"].status == "done"
    carried = actions["Housing plan"]
    assert (carried.status, carried.status_reason, carried.due_on) == (
        "open",
        "carried_over",
        day(60),
    )

    # --- pre_release -> post_release: released (recorded 13 weeks on: the follow-up is due) ---
    released_on = day(2, weeks=-FOLLOW_UP_WEEKS)
    coordinator_action(
        "case-stage/move",
        "change",
        case_reference=story.reference,
        to_stage="post_release",
        reason="released",
        effective_on=str(released_on),
    )
    superseded, follow_up = story.reviews(3)
    assert superseded.status == ReviewStatus.superseded
    assert follow_up.due_at.date() == day(2)
    assert story.case().released_on == released_on

    # --- cycles 3 to 5: three post-release reviews, without the security service ------------
    post_release = review_cycle(
        Walk(story.scheduled_run(3)),
        story,
        cycle=3,
        updates=[
            {"action": 1, "status": "done"},
            {"action": 2, "status": "done"},
        ],
        actions=[
            {"owner_agency": "neustart-wien", "description": "Mentoring", "due_on": str(day(14))}
        ],
        next_on=day(2),
    )
    assert {c: str(p.role) for c, p in post_release.items()} == {
        "lpd-wien": "lead",
        "jva-wien": "core",
        "neustart-wien": "core",
        "fsw-wohnen": "case_dependent",
        "sozialzentrum-wien": "case_dependent",
    }
    assert "police" in post_release["lpd-wien"].rule  # the security service is left out
    review_cycle(
        Walk(story.scheduled_run(4)),
        story,
        cycle=4,
        updates=[{"action": 1, "status": "not_done", "not_done_reason": "client_declined"}],
        actions=[{"owner_agency": "lpd-wien", "description": "Check-in", "due_on": str(day(10))}],
        next_on=day(2),
    )
    fifth = review_cycle(
        Walk(story.scheduled_run(5)),
        story,
        cycle=5,
        updates=[{"action": 1, "status": "carried_over", "new_due_on": str(day(5))}],
        actions=[],
        next_on=day(2),
    )
    assert "dsn" not in fifth
    assert sorted(str(a.status) for a in story.actions()) == [
        "done",
        "done",
        "done",
        "not_done",
        "open",
    ]
    assert [a.status_reason for a in story.actions() if a.status == "not_done"] == [
        "client_declined"
    ]

    # --- action follow-up: the sweep, with no run of the case active, finds the overdue one --
    sweep = run_deployment(
        "notifications-sweep/sweep",
        parameters={"at": datetime.combine(day(8), datetime.min.time()).isoformat() + "+00:00"},
        timeout=0,
    )
    assert wait_for(sweep.id, FINAL).state.type == StateType.COMPLETED
    overdue = story.messages("action_overdue")
    codes = story.codes()
    assert {codes[n.recipient_agency_id] for n in overdue} >= {"lpd-wien"}  # type: ignore[index]

    # --- post_release -> custody: a recall; the next conference is back in custody ----------
    coordinator_action(
        "case-stage/move",
        "change",
        case_reference=story.reference,
        to_stage="custody",
        reason="recalled",
    )
    assert story.history() == [
        ("custody", "pre_release", "release_date_known"),
        ("pre_release", "post_release", "released"),
        ("post_release", "custody", "recalled"),
    ]
    recalled = Walk(story.scheduled_run(6))
    run = recalled.waits_at("preparation")
    assert "stage:custody" in run.tags
    recalled.answer(
        conference_type="security",
        starts_at=datetime.combine(day(2), datetime.min.time()).replace(hour=10).isoformat(),
        time_zone="Europe/Vienna",
        location="jva-wien-room-2",
        acting_representative=REP,
    )
    recalled.waits_at("stakeholders")
    proposal = recalled.description()
    assert "| `dsn` | lead |" in proposal  # in custody again, the security service leads
    recalled.answer(acting_representative=REP)
    recalled.waits_at("action-review")
    recalled.answer(
        updates=[{"action": 1, "status": "not_done", "not_done_reason": "circumstances_changed"}],
        acting_representative=REP,
    )
    recalled.waits_at("information")
    recalled.answer(contributions=[], acting_representative=REP)
    recalled.waits_at("decision")
    assert "if the conference closes the case, the reason" in recalled.description()
    # The conference ends the case: its decision is released, then the case closes, and no
    # next conference is scheduled.
    recalled.answer(
        decisions=["Case handed to the prison's own programme"],
        close_reason="transferred_out",
        acting_representative=REP,
    )
    done = wait_for(recalled.run_id, FINAL)
    assert done.state.type == StateType.COMPLETED
    closed = story.case()
    assert (closed.status, closed.stage, closed.closure_reason) == (
        "closed",
        "closed",
        "transferred_out",
    )
    assert story.reviews(7) == []
    assert story.messages("minutes", 6)  # the closing decision still reached its participants

    # The whole story is still one case: its runs share its tag, one per cycle.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"case:{story.reference}"]))
        )
    completed = {r.name for r in runs if r.state and r.state.type == StateType.COMPLETED}
    assert completed == {story.reference} | {f"{story.reference} review {n}" for n in range(1, 6)}
