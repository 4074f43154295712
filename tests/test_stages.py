"""Stage moves along the prison-exit continuum, transfers, and when the next conference falls due."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models.config.profile import load_profile
from models.errors import Refusal
from models.record.tables import Agency, AuditEvent, Case
from models.rules.cases import close_case, refer_case
from models.rules.stages import (
    MOVES,
    Moved,
    conference_due_after_move,
    held_since_move,
    move_stage,
    next_conference,
    stage_history,
    transfer_case,
)
from models.vocabulary import (
    ClosureReason,
    Need,
    Stage,
    StageChangeKind,
    StageMoveReason,
    TransferReason,
)

pytestmark = pytest.mark.database

NOW = datetime(2033, 6, 1, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
PROFILES = Path(__file__).resolve().parent.parent / "config" / "profiles"
GENERIC = load_profile("generic", PROFILES)
NEUSTART = load_profile("austria-neustart", PROFILES)


def refer(session: Session, stage: Stage = Stage.custody) -> Case:
    return refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=f"STAGE-{stage}-{id(session)}",
        stage=stage,
        needs=[Need.housing],
        profile="austria-neustart",
        acting_representative_code="neustart-wien-1",
        reference_prefix="STAGE",
        flow_run_id=None,
        now=NOW,
    )


def move(session: Session, case: Case, to: Stage, reason: StageMoveReason, **kw: object) -> Moved:
    arguments: dict[str, object] = {
        "effective_on": TODAY,
        "release_on": None,
        "actor_id": None,
        "now": NOW,
    }
    arguments.update(kw)
    return move_stage(session, case=case, to_stage=to, reason=reason, **arguments)  # type: ignore[arg-type]


def fields(caught: pytest.ExceptionInfo[Refusal]) -> dict[str, str]:
    return {p.field: p.reason for p in caught.value.problems}


def test_custody_to_pre_release_to_release_to_recall_keeps_every_move(session: Session) -> None:
    case = refer(session)
    release_on = TODAY + timedelta(weeks=20)
    moved = move(
        session,
        case,
        Stage.pre_release,
        StageMoveReason.release_date_known,
        release_on=release_on,
    )
    assert (moved.from_stage, moved.to_stage, moved.release_on) == (
        Stage.custody,
        Stage.pre_release,
        release_on,
    )
    released = move(
        session,
        case,
        Stage.post_release,
        StageMoveReason.released,
        effective_on=TODAY - timedelta(days=2),
    )
    assert released.released_on == TODAY - timedelta(days=2)
    move(session, case, Stage.custody, StageMoveReason.recalled)
    assert case.stage == Stage.custody and case.release_on is None

    history = stage_history(session, case_id=case.id)  # type: ignore[arg-type]
    assert [(h.from_stage, h.to_stage, h.reason) for h in history] == [
        ("custody", "pre_release", "release_date_known"),
        ("pre_release", "post_release", "released"),
        ("post_release", "custody", "recalled"),
    ]
    audited = session.exec(select(AuditEvent.action).where(AuditEvent.case_id == case.id)).all()
    assert audited.count("case.stage_moved") == 3


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (Stage.post_release, Stage.pre_trial),
        (Stage.custody, Stage.post_release),
        (Stage.pre_release, Stage.custody),
        (Stage.custody, Stage.pre_trial),
        (Stage.custody, Stage.closed),
    ],
)
def test_a_move_domain_md_does_not_allow_is_refused_and_nothing_changes(
    session: Session, start: Stage, to: Stage
) -> None:
    case = refer(session, start)
    with pytest.raises(Refusal) as caught:
        move(session, case, to, StageMoveReason.other)
    reason = fields(caught)["to_stage"]
    assert f"a case at {start} cannot move to {to}" in reason
    assert "may move to" in reason
    assert case.stage == start
    assert stage_history(session, case_id=case.id) == []  # type: ignore[arg-type]


def test_pre_release_without_a_release_date_or_with_a_past_one_is_refused(session: Session) -> None:
    case = refer(session)
    with pytest.raises(Refusal) as caught:
        move(session, case, Stage.pre_release, StageMoveReason.release_date_known)
    assert fields(caught) == {"release_on": "required: pre_release needs a release date"}
    with pytest.raises(Refusal) as caught:
        move(
            session,
            case,
            Stage.pre_release,
            StageMoveReason.release_date_known,
            release_on=TODAY,
        )
    assert "must be after today" in fields(caught)["release_on"]
    assert case.stage == Stage.custody and case.release_on is None


def test_reason_date_and_release_date_must_fit_the_move(session: Session) -> None:
    case = refer(session, Stage.post_release)
    with pytest.raises(Refusal) as caught:
        move(
            session,
            case,
            Stage.custody,
            StageMoveReason.released,
            effective_on=TODAY + timedelta(days=1),
            release_on=TODAY + timedelta(days=30),
        )
    problems = fields(caught)
    assert "does not fit a move from post_release to custody" in problems["reason"]
    assert problems["effective_on"] == "must not be in the future"
    assert problems["release_on"] == "only a move to pre_release takes a release date"
    assert case.stage == Stage.post_release


def test_a_new_release_date_at_pre_release_is_recorded_as_such(session: Session) -> None:
    case = refer(session)
    move(
        session,
        case,
        Stage.pre_release,
        StageMoveReason.release_date_known,
        release_on=TODAY + timedelta(weeks=30),
    )
    later = TODAY + timedelta(weeks=40)
    move(
        session,
        case,
        Stage.pre_release,
        StageMoveReason.release_date_known,
        release_on=later,
    )
    assert case.release_on == later
    kinds = [h.kind for h in stage_history(session, case_id=case.id)]  # type: ignore[arg-type]
    assert kinds == [StageChangeKind.move, StageChangeKind.release_date]


def test_a_closed_case_does_not_move(session: Session) -> None:
    case = refer(session)
    close_case(session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=NOW)
    with pytest.raises(Refusal) as caught:
        move(
            session,
            case,
            Stage.pre_release,
            StageMoveReason.release_date_known,
            release_on=TODAY + timedelta(days=90),
        )
    assert "is closed" in fields(caught)["case_reference"]


def test_every_listed_move_has_a_reason_and_none_leads_back_to_pre_trial() -> None:
    assert all(reasons for reasons in MOVES.values())
    assert all(to != Stage.pre_trial for (_, to) in MOVES)
    assert (Stage.pre_trial, Stage.post_release) in MOVES  # a non-custodial outcome


def test_transfer_to_another_area_and_lead_keeps_the_stage_and_the_history(
    session: Session,
) -> None:
    case = refer(session)
    move(
        session,
        case,
        Stage.pre_release,
        StageMoveReason.release_date_known,
        release_on=TODAY + timedelta(weeks=30),
    )
    agency = session.exec(select(Agency).where(Agency.code == "neustart-wien")).one()
    change = transfer_case(
        session,
        case=case,
        area=agency.area,
        lead_agency="neustart-wien",
        profile=NEUSTART,
        actor_id=None,
        reason=TransferReason.client_moved,
        now=NOW,
    )
    assert change.kind == StageChangeKind.transfer
    assert (change.from_stage, change.to_stage) == (Stage.pre_release, Stage.pre_release)
    assert case.area == agency.area and case.lead_agency_id == agency.id
    assert case.stage == Stage.pre_release
    assert len(stage_history(session, case_id=case.id)) == 2  # type: ignore[arg-type]


def test_transfer_refuses_an_unknown_area_and_a_lead_of_no_leading_kind(session: Session) -> None:
    case = refer(session)
    with pytest.raises(Refusal) as caught:
        transfer_case(
            session,
            case=case,
            area="Atlantis",
            lead_agency="fsw-wohnen",
            profile=NEUSTART,
            actor_id=None,
            reason=TransferReason.other,
            now=NOW,
        )
    problems = fields(caught)
    assert problems["area"] == "no agency in the directory serves this area"
    assert "of no kind that may lead in profile austria-neustart" in problems["lead_agency"]
    assert case.area is None and case.lead_agency_id is None
    with pytest.raises(Refusal) as caught:
        transfer_case(
            session,
            case=case,
            area=None,
            lead_agency=None,
            profile=NEUSTART,
            actor_id=None,
            reason=TransferReason.other,
            now=NOW,
        )
    assert set(fields(caught)) == {"area"}


# --- when the next conference falls due ---------------------------------------------------------


def test_next_conference_follows_the_cadence_outside_the_release_window() -> None:
    due = next_conference(
        profile=GENERIC,
        stage=Stage.custody,
        decided_on=TODAY,
        release_on=None,
        released_on=None,
        held_since_move=False,
    )
    assert due.on == TODAY + timedelta(weeks=GENERIC.review_weeks)
    assert "weeks after the decision" in due.rule


def test_pre_release_conference_comes_the_profiles_lead_time_before_release() -> None:
    release_on = TODAY + timedelta(weeks=30)
    due = next_conference(
        profile=GENERIC,
        stage=Stage.pre_release,
        decided_on=TODAY,
        release_on=release_on,
        released_on=None,
        held_since_move=False,
    )
    assert due.on == release_on - timedelta(weeks=GENERIC.pre_release_weeks)
    assert "pre-release conference" in due.rule
    # At the pre-release conference itself, the next one is the profile's follow-up after
    # release, even when it was brought forward and sits before its own planned date.
    for decided_on in (due.on - timedelta(days=10), due.on):
        at_conference = next_conference(
            profile=NEUSTART,
            stage=Stage.pre_release,
            decided_on=decided_on,
            release_on=release_on,
            released_on=None,
            held_since_move=True,
        )
        assert NEUSTART.post_release_review_weeks is not None
        assert at_conference.on == release_on + timedelta(weeks=NEUSTART.post_release_review_weeks)


def test_after_release_the_follow_up_applies_once_then_the_cadence() -> None:
    assert NEUSTART.post_release_review_weeks is not None
    released_on = TODAY - timedelta(days=3)
    first = next_conference(
        profile=NEUSTART,
        stage=Stage.post_release,
        decided_on=TODAY,
        release_on=None,
        released_on=released_on,
        held_since_move=False,
    )
    assert first.on == released_on + timedelta(weeks=NEUSTART.post_release_review_weeks)
    at_follow_up = next_conference(
        profile=NEUSTART,
        stage=Stage.post_release,
        decided_on=TODAY + timedelta(days=1),
        release_on=None,
        released_on=released_on,
        held_since_move=True,
    )
    assert at_follow_up.on == TODAY + timedelta(days=1, weeks=NEUSTART.review_weeks)


def moved(to: Stage, *, release_on: date | None = None, released_on: date | None = None) -> Moved:
    return Moved(1, Stage.custody, to, release_on, released_on)


def test_a_pre_release_conference_replaces_a_later_review_only() -> None:
    release_on = TODAY + timedelta(weeks=20)
    pre_release = release_on - timedelta(weeks=GENERIC.pre_release_weeks)
    earlier = conference_due_after_move(
        profile=GENERIC,
        moved=moved(Stage.pre_release, release_on=release_on),
        today=TODAY,
        scheduled_on=pre_release + timedelta(days=30),
    )
    assert earlier is not None and earlier.on == pre_release
    kept = conference_due_after_move(
        profile=GENERIC,
        moved=moved(Stage.pre_release, release_on=release_on),
        today=TODAY,
        scheduled_on=pre_release - timedelta(days=1),
    )
    assert kept is None


def test_a_pre_release_conference_already_late_is_due_tomorrow() -> None:
    due = conference_due_after_move(
        profile=GENERIC,
        moved=moved(Stage.pre_release, release_on=TODAY + timedelta(weeks=2)),
        today=TODAY,
        scheduled_on=TODAY + timedelta(weeks=10),
    )
    assert due is not None and due.on == TODAY + timedelta(days=1)
    assert due.rule.endswith("due now")


def test_release_replaces_the_review_with_the_profiles_follow_up_if_it_has_one() -> None:
    assert NEUSTART.post_release_review_weeks is not None
    released_on = TODAY - timedelta(days=1)
    follow_up = conference_due_after_move(
        profile=NEUSTART,
        moved=moved(Stage.post_release, released_on=released_on),
        today=TODAY,
        scheduled_on=TODAY + timedelta(days=5),
    )
    assert follow_up is not None
    assert follow_up.on == released_on + timedelta(weeks=NEUSTART.post_release_review_weeks)
    assert GENERIC.post_release_review_weeks is None
    assert (
        conference_due_after_move(
            profile=GENERIC,
            moved=moved(Stage.post_release, released_on=released_on),
            today=TODAY,
            scheduled_on=TODAY + timedelta(days=5),
        )
        is None
    )


def test_a_conference_begun_after_the_move_is_the_one_the_move_called_for(
    session: Session,
) -> None:
    case = refer(session)
    assert not held_since_move(session, case=case, conference_created_at=NOW)  # never moved
    move(
        session,
        case,
        Stage.pre_release,
        StageMoveReason.release_date_known,
        release_on=TODAY + timedelta(weeks=20),
    )
    before = NOW - timedelta(hours=1)
    after = NOW + timedelta(hours=1)
    assert not held_since_move(session, case=case, conference_created_at=before)
    assert held_since_move(session, case=case, conference_created_at=after)
