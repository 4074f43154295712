"""Stage moves, reviews and reminders at 23:30 UTC and across Vienna's clock changes.

The conferences meet in Europe/Vienna; every rule gets its "now" from `tests.clocks`, and the
expected day is Vienna's day at that moment, never the UTC one.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from models.config.profile import load_profile
from models.errors import Refusal
from models.record.tables import ActionItem, Agency, Case, Conference, Notification, Review
from models.rules import review
from models.rules.cases import refer_case
from models.rules.conference import open_conference
from models.rules.followup import queue_due_notices
from models.rules.participants import record_participants
from models.rules.stages import case_today, conference_due_after_move, move_stage
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    ConferenceKind,
    ConferenceType,
    Need,
    Phase,
    ReviewStatus,
    Role,
    Stage,
    StageMoveReason,
)
from tests.clocks import (
    CLOCKS,
    SUMMER_TIME_ENDS,
    SUMMER_TIME_STARTS,
    VIENNA,
    vienna_today,
)

pytestmark = pytest.mark.database

NEUSTART = load_profile("austria-neustart")
FOLLOW_UP = timedelta(weeks=NEUSTART.post_release_review_weeks or 0)
PROPOSALS = [
    Proposal("neustart-wien", Role.lead, "test: lead"),
    Proposal("jva-wien", Role.core, "test: core"),
]
clocks = pytest.mark.parametrize("now", list(CLOCKS.values()), ids=list(CLOCKS))


def fields(caught: pytest.ExceptionInfo[Refusal]) -> dict[str, str]:
    return {p.field: p.reason for p in caught.value.problems}


def case_waiting_in_vienna(
    session: Session, now: datetime, *, stage: Stage, review_in: timedelta = timedelta(days=60)
) -> Case:
    """An austria-neustart case whose first conference met in Vienna, waiting for its review."""
    began = now - timedelta(days=200)
    case = refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=f"DAY-{stage}-{now.isoformat()}",
        stage=stage,
        needs=[Need.housing],
        profile="austria-neustart",
        acting_representative_code="neustart-wien-1",
        reference_prefix="DAY",
        flow_run_id=None,
        now=began,
    )
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=ConferenceType.security,
        starts_at=began + timedelta(days=10),
        time_zone="Europe/Vienna",
        location="Room 1",
        now=began,
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
    conference.released_at = began + timedelta(days=10)
    case.phase = Phase.review_scheduled
    session.add_all([case, conference])
    session.flush()
    review.plan_review(
        session, case=case, cycle=2, due_at=now + review_in, now=began + timedelta(days=10)
    )
    return case


def move_and_replan(
    session: Session,
    case: Case,
    now: datetime,
    *,
    to_stage: Stage,
    reason: StageMoveReason,
    effective_on: date | None = None,
    release_on: date | None = None,
) -> Review | None:
    """What `case-stage/move` does with the rules: move, then put the next conference where the
    move says (tasks.stages.move and tasks.reviews.reschedule_review); returns the new review."""
    today = case_today(session, case=case, now=now)
    moved = move_stage(
        session,
        case=case,
        to_stage=to_stage,
        reason=reason,
        effective_on=effective_on or today,
        release_on=release_on,
        actor_id=None,
        now=now,
    )
    scheduled = review.scheduled_reviews(session, case_id=case.id)  # type: ignore[arg-type]
    scheduled_on = min((r.due_at for r in scheduled), default=None)
    due = conference_due_after_move(
        profile=NEUSTART,
        moved=moved,
        today=today,
        scheduled_on=scheduled_on.date() if scheduled_on else None,
    )
    if due is None:
        return None
    due_at = review.review_due_at(session, case=case, on=due.on, now=now)
    _, planned = review.replan_review(
        session, case=case, due_at=due_at, now=now, actor_id=None, reason="stage_move"
    )
    return planned


# --- stage moves ------------------------------------------------------------------------------


@clocks
def test_the_case_day_is_viennas_day(session: Session, now: datetime) -> None:
    case = case_waiting_in_vienna(session, now, stage=Stage.custody)
    assert case_today(session, case=case, now=now) == now.astimezone(VIENNA).date()
    if now.hour == 23:  # Vienna is always ahead of UTC: already the next day there
        assert case_today(session, case=case, now=now) == now.date() + timedelta(days=1)


@clocks
def test_a_release_recorded_late_is_followed_up_tomorrow_in_vienna(
    session: Session, now: datetime
) -> None:
    """Released long enough ago that the follow-up is due: it is planned for Vienna's tomorrow,
    at the usual hour there (the bug: UTC's tomorrow, which at 23:30 UTC is Vienna's today, was
    then refused as "must be after today")."""
    case = case_waiting_in_vienna(session, now, stage=Stage.pre_release)
    today = vienna_today(now)
    planned = move_and_replan(
        session,
        case,
        now,
        to_stage=Stage.post_release,
        reason=StageMoveReason.released,
        effective_on=today - FOLLOW_UP - timedelta(days=3),
    )
    assert planned is not None
    assert planned.due_at.astimezone(VIENNA).date() == today + timedelta(days=1)
    assert planned.due_at.astimezone(VIENNA).hour == review.REVIEW_START.hour
    assert planned.due_at > now
    assert [r.status for r in review.scheduled_reviews(session, case_id=case.id)] == [  # type: ignore[arg-type]
        ReviewStatus.scheduled
    ]


@clocks
def test_a_release_whose_follow_up_falls_on_viennas_tomorrow_keeps_that_day(
    session: Session, now: datetime
) -> None:
    case = case_waiting_in_vienna(session, now, stage=Stage.pre_release)
    tomorrow = vienna_today(now) + timedelta(days=1)
    planned = move_and_replan(
        session,
        case,
        now,
        to_stage=Stage.post_release,
        reason=StageMoveReason.released,
        effective_on=tomorrow - FOLLOW_UP,
    )
    assert planned is not None
    assert planned.due_at.astimezone(VIENNA).date() == tomorrow


@clocks
def test_a_release_today_in_vienna_is_not_in_the_future(session: Session, now: datetime) -> None:
    case = case_waiting_in_vienna(session, now, stage=Stage.pre_release)
    today = vienna_today(now)
    with pytest.raises(Refusal) as caught:
        move_and_replan(
            session,
            case,
            now,
            to_stage=Stage.post_release,
            reason=StageMoveReason.released,
            effective_on=today + timedelta(days=1),
        )
    assert fields(caught) == {"effective_on": "must not be in the future"}
    assert case.stage == Stage.pre_release
    planned = move_and_replan(
        session, case, now, to_stage=Stage.post_release, reason=StageMoveReason.released
    )
    assert case.released_on == today
    assert planned is not None
    assert planned.due_at.astimezone(VIENNA).date() == today + FOLLOW_UP


@clocks
def test_a_release_date_must_be_after_viennas_today(session: Session, now: datetime) -> None:
    case = case_waiting_in_vienna(session, now, stage=Stage.custody)
    today = vienna_today(now)
    with pytest.raises(Refusal) as caught:
        move_and_replan(
            session,
            case,
            now,
            to_stage=Stage.pre_release,
            reason=StageMoveReason.release_date_known,
            release_on=today,
        )
    assert "release_on" in fields(caught)
    assert case.stage == Stage.custody
    # Released in three days: the pre-release conference (12 weeks before) is due now, that is
    # tomorrow in Vienna.
    planned = move_and_replan(
        session,
        case,
        now,
        to_stage=Stage.pre_release,
        reason=StageMoveReason.release_date_known,
        release_on=today + timedelta(days=3),
    )
    assert planned is not None
    assert planned.due_at.astimezone(VIENNA).date() == today + timedelta(days=1)


# --- reviews ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on", "utc_hour"),
    [
        (SUMMER_TIME_STARTS - timedelta(days=1), 9),  # CET: 10:00 is 09:00 UTC
        (SUMMER_TIME_STARTS, 8),  # CEST from 03:00 that night
        (SUMMER_TIME_ENDS - timedelta(days=1), 8),
        (SUMMER_TIME_ENDS, 9),  # CET again from 03:00 CEST (02:00 CET)
    ],
)
def test_a_review_starts_at_ten_in_vienna_on_either_side_of_a_clock_change(
    on: date, utc_hour: int
) -> None:
    starts = review.review_starts_at(on=on, time_zone="Europe/Vienna")
    assert (starts.astimezone(VIENNA).date(), starts.astimezone(VIENNA).hour) == (on, 10)
    assert starts.astimezone(UTC).hour == utc_hour


def test_a_review_run_starts_its_lead_time_before_even_across_a_clock_change() -> None:
    due_at = review.review_starts_at(
        on=SUMMER_TIME_STARTS + timedelta(days=3), time_zone="Europe/Vienna"
    )
    long_ago = datetime(2030, 1, 1, tzinfo=UTC)
    run_at = review.review_run_at(due_at=due_at, now=long_ago)
    assert due_at - run_at == review.PREPARATION_LEAD  # elapsed time, not wall-clock days


@clocks
def test_a_review_moves_to_viennas_tomorrow_not_its_today(session: Session, now: datetime) -> None:
    case = case_waiting_in_vienna(session, now, stage=Stage.custody)
    today = vienna_today(now)
    with pytest.raises(Refusal) as caught:
        review.review_due_at(session, case=case, on=today, now=now)
    assert fields(caught) == {"review_on": "must be after today"}
    due_at = review.review_due_at(session, case=case, on=today + timedelta(days=1), now=now)
    assert due_at > now
    _, planned = review.replan_review(
        session, case=case, due_at=due_at, now=now, actor_id=None, reason="later_review_agreed"
    )
    assert planned.version == 2 and planned.due_at.astimezone(VIENNA).date() == today + timedelta(
        days=1
    )


# --- reminders and action notices -------------------------------------------------------------


def sweep(session: Session, now: datetime) -> list[int]:
    return queue_due_notices(
        session, now=now, reminder_lead=timedelta(hours=48), due_soon=timedelta(days=7)
    )


def events(session: Session, case: Case) -> set[tuple[str, int | None]]:
    rows = session.exec(select(Notification).where(Notification.case_id == case.id))
    return {(n.event, n.detail.get("action_id")) for n in rows}


def add_action(session: Session, case: Case, due_on: date, now: datetime) -> ActionItem:
    conference = session.exec(
        select(Conference).where(Conference.case_id == case.id).order_by(col(Conference.id))
    ).first()
    owner = session.exec(select(Agency).where(Agency.code == "jva-wien")).one()
    action = ActionItem(
        case_id=case.id,  # type: ignore[arg-type]
        conference_id=conference.id,  # type: ignore[union-attr, arg-type]
        owner_agency_id=owner.id,  # type: ignore[arg-type]
        description="Arrange a housing appointment",
        due_on=due_on,
        created_at=now - timedelta(days=30),
        updated_at=now - timedelta(days=30),
    )
    session.add(action)
    session.flush()
    return action


@clocks
def test_an_action_is_overdue_once_its_day_is_over_in_vienna(
    session: Session, now: datetime
) -> None:
    case = case_waiting_in_vienna(session, now, stage=Stage.custody, review_in=timedelta(days=90))
    today = vienna_today(now)
    yesterday = add_action(session, case, today - timedelta(days=1), now)
    due_today = add_action(session, case, today, now)
    sweep(session, now)
    found = events(session, case)
    assert ("action_overdue", yesterday.id) in found
    assert ("action_escalation", yesterday.id) in found
    assert ("action_due_soon", due_today.id) in found
    assert ("action_overdue", due_today.id) not in found


@pytest.mark.parametrize("day", [SUMMER_TIME_STARTS, SUMMER_TIME_ENDS], ids=["spring", "autumn"])
def test_the_reminder_comes_48_hours_before_a_conference_across_a_clock_change(
    session: Session, day: date
) -> None:
    """A conference at 10:00 Vienna the day after the change: the reminder falls due 48 elapsed
    hours before it, one UTC minute apart it is not yet due."""
    starts_at = datetime.combine(day + timedelta(days=1), review.REVIEW_START, tzinfo=VIENNA)
    reminder_due = starts_at - timedelta(hours=48)
    case = refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=f"DAY-REMINDER-{day}",
        stage=Stage.custody,
        needs=[Need.housing],
        profile="austria-neustart",
        acting_representative_code="neustart-wien-1",
        reference_prefix="DAY",
        flow_run_id=None,
        now=reminder_due - timedelta(days=5),
    )
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=ConferenceType.security,
        starts_at=starts_at,
        time_zone="Europe/Vienna",
        location="Room 1",
        now=reminder_due - timedelta(days=5),
    )
    record_participants(
        session,
        conference=conference,
        proposals=PROPOSALS,
        client_and_family=False,
        family_involved=False,
        intermediary_code=None,
    )
    sweep(session, reminder_due - timedelta(minutes=1))
    assert ("reminder", None) not in events(session, case)
    sweep(session, reminder_due)
    assert ("reminder", None) in events(session, case)


@pytest.mark.parametrize("day", [SUMMER_TIME_STARTS, SUMMER_TIME_ENDS], ids=["spring", "autumn"])
def test_a_review_due_notice_comes_seven_days_before_across_a_clock_change(
    session: Session, day: date
) -> None:
    due_at = review.review_starts_at(on=day + timedelta(days=2), time_zone="Europe/Vienna")
    notice_due = due_at - timedelta(days=7)
    case = case_waiting_in_vienna(session, notice_due - timedelta(days=30), stage=Stage.custody)
    [scheduled] = review.scheduled_reviews(session, case_id=case.id)  # type: ignore[arg-type]
    scheduled.due_at = due_at
    session.add(scheduled)
    session.flush()
    sweep(session, notice_due - timedelta(minutes=1))
    assert ("review_due", None) not in events(session, case)
    sweep(session, notice_due)
    assert ("review_due", None) in events(session, case)


# --- consent expiry ----------------------------------------------------------------------------


def test_a_consent_expires_when_its_day_ends_in_vienna_not_in_utc(session: Session) -> None:
    """A consent given until 31 December is no longer in force at 23:30 UTC that evening: it is
    already 1 January in Vienna, the day the gate (tasks.consent) checks against."""
    from models.record.tables import ConsentRecord
    from models.rules.consent import ledger, missing_consent
    from models.vocabulary import ConsentDecision, ConsentScope

    now = datetime(2031, 12, 31, 23, 30, tzinfo=UTC)
    case = case_waiting_in_vienna(session, now, stage=Stage.post_release)
    for scope in (ConsentScope.social_network_conference, ConsentScope.family_involvement):
        session.add(
            ConsentRecord(
                case_id=case.id,  # type: ignore[arg-type]
                scope=scope,
                decision=ConsentDecision.granted,
                recorded_by_id=1,
                recorded_at=now - timedelta(days=30),
                expires_on=date(2031, 12, 31),
            )
        )
    session.flush()
    rules = NEUSTART.rules_for(ConferenceType.social_network)
    records = ledger(session, case_id=case.id)  # type: ignore[arg-type]
    today = case_today(session, case=case, now=now)
    assert today == date(2032, 1, 1)
    assert missing_consent(rules, Phase.information, records, now.date()) == []  # the UTC day
    assert missing_consent(rules, Phase.information, records, today) == [
        ConsentScope.social_network_conference,
        ConsentScope.family_involvement,
    ]
