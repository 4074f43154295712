"""Moves along the prison-exit continuum (docs/domain.md, "Stages"), transfers, and the next
conference date.

`move_stage` and `transfer_case` check a change, apply it to the case and append it to the stage
history (`StageChange`, append-only). They say nothing of reviews: the caller asks
`conference_due_after_move` whether the next conference must be replanned, and does it.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.config.profile import Profile
from models.errors import Problem, Refusal
from models.record.audit import audit
from models.record.database import saved_id
from models.record.tables import Agency, Case, StageChange
from models.rules.review import review_time_zone
from models.vocabulary import (
    CaseStatus,
    Stage,
    StageChangeKind,
    StageMoveReason,
    TransferReason,
)

#: The moves docs/domain.md lists and the reasons each may be recorded with. Closure, from any stage,
#: is `case-close`; a transfer keeps the stage.
MOVES: dict[tuple[Stage, Stage], tuple[StageMoveReason, ...]] = {
    (Stage.pre_trial, Stage.custody): (
        StageMoveReason.remanded,
        StageMoveReason.sentenced,
        StageMoveReason.other,
    ),
    (Stage.pre_trial, Stage.post_release): (
        StageMoveReason.non_custodial_outcome,
        StageMoveReason.released_from_pre_trial_detention,
        StageMoveReason.other,
    ),
    (Stage.custody, Stage.pre_release): (StageMoveReason.release_date_known,),
    (Stage.pre_release, Stage.post_release): (StageMoveReason.released,),
    (Stage.post_release, Stage.custody): (
        StageMoveReason.recalled,
        StageMoveReason.new_custodial_sentence,
        StageMoveReason.other,
    ),
}

#: How far back a move may be recorded (a release recorded late still counts from its own date).
MAX_BACKDATE = timedelta(days=366)


def case_today(session: Session, *, case: Case, now: datetime) -> date:
    """Today where the case's conferences meet: the day every date of a move, and the next
    conference's date, is checked against (at 23:30 UTC it is already tomorrow in Vienna, and
    the review is refused unless after that day)."""
    return now.astimezone(ZoneInfo(review_time_zone(session, case=case))).date()


def allowed_moves(stage: Stage) -> list[Stage]:
    return [to for (start, to) in MOVES if start == stage]


def _refuse_move(from_stage: Stage, to_stage: Stage) -> Problem:
    allowed = ", ".join(allowed_moves(from_stage)) or "none"
    hint = " (closing a case is case-close/close)" if to_stage == Stage.closed else ""
    return Problem(
        "to_stage",
        f"a case at {from_stage} cannot move to {to_stage}{hint}; from {from_stage} it may move "
        f"to: {allowed}",
    )


@dataclass(frozen=True)
class Moved:
    """What a stage move changed: the history row and the case's dates after it."""

    change_id: int
    from_stage: Stage
    to_stage: Stage
    release_on: date | None
    released_on: date | None


def move_stage(
    session: Session,
    *,
    case: Case,
    to_stage: Stage,
    reason: StageMoveReason,
    effective_on: date,
    release_on: date | None,
    actor_id: int | None,
    now: datetime,
) -> Moved:
    """Move a case to another stage, or record a new release date while it is at pre_release.

    Refused (nothing written) for a closed case, a move docs/domain.md does not list, a reason that
    does not fit the move, a date in the future or too far back, a move to pre_release without
    a future release date, or a release date given where none belongs.
    """
    today = case_today(session, case=case, now=now)
    from_stage = Stage(case.stage)
    if case.status == CaseStatus.closed:
        raise Refusal.of("case_reference", f"case {case.reference} is closed")
    date_change = to_stage == from_stage == Stage.pre_release
    if not date_change and (from_stage, to_stage) not in MOVES:
        raise Refusal(_refuse_move(from_stage, to_stage))
    problems = _move_problems(
        from_stage,
        to_stage,
        reason=reason,
        effective_on=effective_on,
        release_on=release_on,
        today=today,
    )
    if problems:
        raise Refusal(*problems)

    case.stage = to_stage
    if to_stage == Stage.pre_release:
        case.release_on = release_on
    if to_stage == Stage.post_release:
        case.released_on = effective_on
    if to_stage == Stage.custody:
        # A recall or a new sentence: the old release dates no longer describe what comes next.
        case.release_on = None
    case.updated_at = now
    session.add(case)
    change = StageChange(
        case_id=saved_id(case),
        kind=StageChangeKind.release_date if date_change else StageChangeKind.move,
        from_stage=from_stage,
        to_stage=to_stage,
        reason=str(reason),
        release_on=release_on,
        actor_id=actor_id,
        at=now,
    )
    session.add(change)
    session.flush()
    audit(
        session,
        action="case.release_date" if date_change else "case.stage_moved",
        case_id=case.id,
        actor_id=actor_id,
        at=now,
        detail=f"{from_stage} -> {to_stage} ({reason}), effective {effective_on.isoformat()}",
    )
    return Moved(saved_id(change), from_stage, to_stage, case.release_on, case.released_on)


def _move_problems(
    from_stage: Stage,
    to_stage: Stage,
    *,
    reason: StageMoveReason,
    effective_on: date,
    release_on: date | None,
    today: date,
) -> list[Problem]:
    """What is wrong with a listed move: its reason, its day, its release date."""
    date_change = to_stage == from_stage == Stage.pre_release
    problems: list[Problem] = []
    reasons = (
        (StageMoveReason.release_date_known,) if date_change else MOVES[(from_stage, to_stage)]
    )
    if reason not in reasons:
        problems.append(
            Problem(
                "reason",
                f"'{reason}' does not fit a move from {from_stage} to {to_stage}; use one of: "
                + ", ".join(reasons),
            )
        )
    if effective_on > today:
        problems.append(Problem("effective_on", "must not be in the future"))
    elif effective_on < today - MAX_BACKDATE:
        problems.append(
            Problem("effective_on", "more than a year ago; record moves as they happen")
        )
    if to_stage == Stage.pre_release:
        if release_on is None:
            problems.append(Problem("release_on", "required: pre_release needs a release date"))
        elif release_on <= today:
            problems.append(
                Problem(
                    "release_on", "must be after today (a past release is a move to post_release)"
                )
            )
    elif release_on is not None:
        problems.append(Problem("release_on", "only a move to pre_release takes a release date"))
    return problems


def transfer_case(
    session: Session,
    *,
    case: Case,
    area: str | None,
    lead_agency: str | None,
    profile: Profile,
    actor_id: int | None,
    reason: TransferReason,
    now: datetime,
) -> StageChange:
    """Hand a case to another area and/or lead agency; its stage and whole history stay.

    The new lead must be an active agency of a kind that may lead one of the profile's
    conference types; it is proposed as lead from the next conference on.
    """
    if case.status == CaseStatus.closed:
        raise Refusal.of("case_reference", f"case {case.reference} is closed")
    lead, problems = _transfer_problems(
        session, case=case, area=area, lead_agency=lead_agency, profile=profile
    )
    if problems:
        raise Refusal(*problems)
    if area is not None:
        case.area = area
    if lead is not None:
        case.lead_agency_id = lead.id
    case.updated_at = now
    session.add(case)
    change = StageChange(
        case_id=saved_id(case),
        kind=StageChangeKind.transfer,
        from_stage=Stage(case.stage),
        to_stage=Stage(case.stage),
        reason=str(reason),
        area=area,
        lead_agency_id=lead.id if lead is not None else None,
        actor_id=actor_id,
        at=now,
    )
    session.add(change)
    session.flush()
    audit(
        session,
        action="case.transferred",
        case_id=case.id,
        actor_id=actor_id,
        at=now,
        detail=f"area {area or 'unchanged'}, lead {lead_agency or 'unchanged'} ({reason})",
    )
    return change


def _transfer_problems(
    session: Session,
    *,
    case: Case,
    area: str | None,
    lead_agency: str | None,
    profile: Profile,
) -> tuple[Agency | None, list[Problem]]:
    """The new lead agency (if one is named) and what is wrong with the transfer."""
    problems: list[Problem] = []
    if area is None and lead_agency is None:
        problems.append(Problem("area", "give a new area, a new lead agency, or both"))
    if area is not None:
        areas = set(session.exec(select(Agency.area).where(col(Agency.area).is_not(None))))
        if area == case.area:
            problems.append(Problem("area", f"the case is already in area '{area}'"))
        elif area not in areas:
            problems.append(Problem("area", "no agency in the directory serves this area"))
    lead: Agency | None = None
    if lead_agency is not None:
        lead = session.exec(select(Agency).where(Agency.code == lead_agency)).first()
        lead_kinds = {
            str(kind)
            for rules in profile.conference_types.values()
            for kind in [
                *rules.lead_kinds,
                *(k for ks in rules.lead_kinds_by_stage.values() for k in ks),
            ]
        }
        if lead is None or not lead.active:
            problems.append(Problem("lead_agency", "not an active agency in the directory"))
        elif not lead_kinds & set(lead.kinds):
            kinds = ", ".join(sorted(lead_kinds))
            problems.append(
                Problem(
                    "lead_agency",
                    f"agency '{lead_agency}' is of no kind that may lead in profile "
                    f"{profile.name} ({kinds})",
                )
            )
        elif lead.id == case.lead_agency_id:
            problems.append(Problem("lead_agency", f"'{lead_agency}' already leads this case"))
    return lead, problems


def stage_history(session: Session, *, case_id: int) -> list[StageChange]:
    query = select(StageChange).where(StageChange.case_id == case_id)
    return list(session.exec(query.order_by(col(StageChange.id))))


@dataclass(frozen=True)
class NextConference:
    """When the next conference is due by the rules, and which rule says so."""

    on: date
    rule: str


def next_conference(
    *,
    profile: Profile,
    stage: Stage,
    decided_on: date,
    release_on: date | None,
    released_on: date | None,
    held_since_move: bool,
) -> NextConference:
    """The default date of the next conference after a decision on `decided_on`.

    `held_since_move`: this conference began after the case reached its stage, so it is itself
    the pre-release conference or the follow-up after release. Pre-release: the pre-release
    conference `pre_release_weeks` before the release date unless held, then the profile's
    follow-up after the expected release if it has one. Post-release: the follow-up
    `post_release_review_weeks` after release unless held. Otherwise the cadence:
    `review_weeks` after the decision.
    """
    follow_up_weeks = profile.post_release_review_weeks
    if stage == Stage.pre_release and release_on is not None:
        pre_release = release_on - timedelta(weeks=profile.pre_release_weeks)
        if not held_since_move and pre_release > decided_on:
            return NextConference(
                pre_release,
                f"the pre-release conference, {profile.pre_release_weeks} weeks before the "
                f"release date {release_on.isoformat()} (profile {profile.name})",
            )
        if follow_up_weeks is not None and release_on > decided_on:
            return NextConference(
                release_on + timedelta(weeks=follow_up_weeks),
                f"the follow-up conference {follow_up_weeks} weeks after the expected release "
                f"on {release_on.isoformat()} (profile {profile.name})",
            )
    if (
        stage == Stage.post_release
        and released_on is not None
        and follow_up_weeks is not None
        and not held_since_move
    ):
        follow_up = released_on + timedelta(weeks=follow_up_weeks)
        if follow_up > decided_on:
            return NextConference(
                follow_up,
                f"the follow-up conference {follow_up_weeks} weeks after release on "
                f"{released_on.isoformat()} (profile {profile.name})",
            )
    return NextConference(
        decided_on + timedelta(weeks=profile.review_weeks),
        f"every {profile.review_weeks} weeks after the decision (profile {profile.name})",
    )


def held_since_move(session: Session, *, case: Case, conference_created_at: datetime) -> bool:
    """Whether a conference begun at `conference_created_at` began after the case's last move
    (or release date) into its present stage; False when the case never moved."""
    last = session.exec(
        select(StageChange)
        .where(
            StageChange.case_id == case.id,
            StageChange.to_stage == case.stage,
            col(StageChange.kind).in_([StageChangeKind.move, StageChangeKind.release_date]),
        )
        .order_by(col(StageChange.id).desc())
    ).first()
    return last is not None and conference_created_at >= last.at


def conference_due_after_move(
    *, profile: Profile, moved: Moved, today: date, scheduled_on: date | None
) -> NextConference | None:
    """The date the next conference must move to after a stage move, or None to keep it.

    A pre-release conference earlier than the scheduled review takes its place; after release the
    profile's follow-up conference (if it has one) replaces what was scheduled. A date already
    past is brought to tomorrow: the conference is due now.
    """
    due: NextConference | None = None
    if moved.to_stage == Stage.pre_release and moved.release_on is not None:
        on = moved.release_on - timedelta(weeks=profile.pre_release_weeks)
        if scheduled_on is None or on < scheduled_on:
            due = NextConference(
                on,
                f"the pre-release conference, {profile.pre_release_weeks} weeks before the "
                f"release date {moved.release_on.isoformat()}",
            )
    elif (
        moved.to_stage == Stage.post_release
        and moved.released_on is not None
        and profile.post_release_review_weeks is not None
    ):
        weeks = profile.post_release_review_weeks
        due = NextConference(
            moved.released_on + timedelta(weeks=weeks),
            f"the follow-up conference {weeks} weeks after release on "
            f"{moved.released_on.isoformat()}",
        )
    if due is None:
        return None
    if due.on <= today:
        due = NextConference(today + timedelta(days=1), due.rule + ", due now")
    if scheduled_on is not None and due.on == scheduled_on:
        return None
    return due
