"""Review conferences: when the next one falls due, the key that schedules it once, and how a
scheduled review moves, is cancelled, or is brought in line with a run cancelled in Prefect."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from models.errors import Problem, Refusal
from models.record import ledger
from models.record.audit import audit
from models.record.database import saved_id
from models.record.outbox import queue_to_agency
from models.record.tables import Agency, Case, Conference, Participant, Review
from models.rules.cases import set_phase
from models.vocabulary import CaseStatus, Phase, ReviewChangeKind, ReviewStatus, Role

__all__ = [
    "Review",
    "cancel_review",
    "check_review_change",
    "plan_review",
    "replan_review",
    "review_due_at",
    "review_key",
    "review_starts_at",
]

REVIEW_START = time(10, 0)
# The review's run starts this long before the review conference, so invitations go out in time.
PREPARATION_LEAD = timedelta(days=14)


def review_starts_at(*, on: date, time_zone: str) -> datetime:
    """When the review conference is due: the morning of its date in the conference's time zone."""
    return datetime.combine(on, REVIEW_START, tzinfo=ZoneInfo(time_zone))


#: A review due within its preparation lead starts this soon: at once, but after the run that
#: scheduled it has recorded the case as waiting for it.
START_SOON = timedelta(seconds=3)


def review_run_at(*, due_at: datetime, now: datetime) -> datetime:
    """When the review's flow run starts: its preparation lead before the review, or at once
    (a moment from now) when that is already past."""
    return max(due_at - PREPARATION_LEAD, now + START_SOON)


def review_key(*, reference: str, cycle: int, version: int) -> str:
    return f"{reference}/review/c{cycle}/v{version}"


def plan_review(
    session: Session, *, case: Case, cycle: int, due_at: datetime, now: datetime, version: int = 1
) -> Review:
    """The review row for `cycle` (created once per version); its run is attached when made."""
    if due_at <= now:
        raise Refusal.of("next_review_on", "must be in the future")
    key = review_key(reference=case.reference, cycle=cycle, version=version)
    existing = session.exec(select(Review).where(Review.idempotency_key == key)).first()
    if existing is not None:
        return existing
    review = Review(
        case_id=saved_id(case),
        cycle=cycle,
        due_at=due_at,
        version=version,
        idempotency_key=key,
        status=ReviewStatus.scheduled,
        created_at=now,
    )
    session.add(review)
    session.flush()
    return review


def scheduled_reviews(session: Session, *, case_id: int) -> list[Review]:
    return list(
        session.exec(
            select(Review).where(Review.case_id == case_id, Review.status == ReviewStatus.scheduled)
        )
    )


# A review can be moved or cancelled only between cycles: after the release scheduled it.
BETWEEN_CYCLES = (Phase.review_scheduled, Phase.review_cancelled)


def _case_problems(case: Case) -> list[Problem]:
    if case.status != CaseStatus.open:
        return [Problem("case_reference", "this case is closed")]
    if case.phase not in BETWEEN_CYCLES:
        return [
            Problem(
                "case_reference",
                f"the case is in the middle of conference cycle {case.cycle} (phase "
                f"{case.phase}); its review is scheduled when the decision is released",
            )
        ]
    return []


def last_conference(session: Session, *, case: Case) -> Conference | None:
    """The case's latest conference: where a review's participants and time zone come from."""
    return session.exec(
        select(Conference)
        .where(Conference.case_id == case.id)
        .order_by(col(Conference.cycle).desc())
    ).first()


def review_time_zone(session: Session, *, case: Case) -> str:
    """The conference time zone (the referring agency's before any conference)."""
    conference = last_conference(session, case=case)
    if conference is not None:
        return conference.time_zone
    agency = session.get(Agency, case.referring_agency_id)
    return agency.time_zone if agency else "UTC"


def _date_problems(
    session: Session, *, case: Case, on: date | None, now: datetime
) -> list[Problem]:
    if on is None:
        return [Problem("review_on", "give the new date of the review to move it")]
    today = now.astimezone(ZoneInfo(review_time_zone(session, case=case))).date()
    if on <= today:
        return [Problem("review_on", "must be after today")]
    return []


def review_due_at(session: Session, *, case: Case, on: date, now: datetime) -> datetime:
    """The review on `on` at the usual hour in the conference's time zone; refused unless after
    today there."""
    problems = _date_problems(session, case=case, on=on, now=now)
    if problems:
        raise Refusal(*problems)
    return review_starts_at(on=on, time_zone=review_time_zone(session, case=case))


def check_review_change(
    session: Session, *, case: Case, action: ReviewChangeKind, on: date | None, now: datetime
) -> None:
    """Every reason a coordinator's move or cancel cannot be done, each with its field."""
    problems = _case_problems(case)
    if action == ReviewChangeKind.move:
        problems += _date_problems(session, case=case, on=on, now=now)
    else:
        if on is not None:
            problems.append(
                Problem("review_on", "leave empty to cancel; choose move to change the date")
            )
        if not problems and not scheduled_reviews(session, case_id=saved_id(case)):
            problems.append(Problem("action", "no review is scheduled for this case to cancel"))
    if problems:
        raise Refusal(*problems)


def replan_review(
    session: Session,
    *,
    case: Case,
    due_at: datetime,
    now: datetime,
    actor_id: int | None,
    reason: str,
) -> tuple[list[Review], Review]:
    """Supersede the scheduled review with a new version at `due_at` (or plan one after a
    cancellation); returns the superseded rows and the new row. Asked again for the date already
    scheduled (a retry), it changes nothing. The run is made by the caller."""
    problems = _case_problems(case)
    if due_at <= now:
        problems.append(Problem("review_on", "must be after today"))
    if problems:
        raise Refusal(*problems)
    assert case.id is not None
    scheduled = scheduled_reviews(session, case_id=case.id)
    if (
        case.phase == Phase.review_scheduled
        and len(scheduled) == 1
        and scheduled[0].due_at == due_at
    ):
        return [], scheduled[0]
    cycle = case.cycle + 1
    versions = session.exec(
        select(Review.version).where(Review.case_id == case.id, Review.cycle == cycle)
    ).all()
    for row in scheduled:
        row.status = ReviewStatus.superseded
        session.add(row)
    new = plan_review(
        session,
        case=case,
        cycle=cycle,
        due_at=due_at,
        now=now,
        version=max(versions, default=0) + 1,
    )
    set_phase(session, case=case, phase=Phase.review_scheduled, now=now)
    previous = max(scheduled, key=lambda r: r.version, default=None)
    was = f"v{previous.version} {previous.due_at:%Y-%m-%d}" if previous else "none"
    audit(
        session,
        action="review.moved",
        case_id=case.id,
        actor_id=actor_id,
        at=now,
        detail=f"cycle {cycle}: {was} -> v{new.version} {new.due_at:%Y-%m-%d}",
        justification=reason,
    )
    _tell(
        session,
        case=case,
        review=new,
        event="review_moved",
        roles=(Role.lead, Role.coordinator),
        now=now,
        previous=previous,
    )
    return scheduled, new


def cancel_review(
    session: Session, *, case: Case, now: datetime, actor_id: int | None, reason: str
) -> list[Review]:
    """Cancel what is scheduled: the case stays open with no next review (`review_cancelled`)
    until a move plans one. Returns the cancelled rows, whose runs the caller cancels."""
    check_review_change(session, case=case, action=ReviewChangeKind.cancel, on=None, now=now)
    scheduled = scheduled_reviews(session, case_id=saved_id(case))
    for row in scheduled:
        row.status = ReviewStatus.cancelled
        session.add(row)
    set_phase(session, case=case, phase=Phase.review_cancelled, now=now)
    latest = max(scheduled, key=lambda r: r.version)
    audit(
        session,
        action="review.cancelled",
        case_id=case.id,
        actor_id=actor_id,
        at=now,
        detail=f"cycle {latest.cycle}: v{latest.version} {latest.due_at:%Y-%m-%d}",
        justification=reason,
    )
    _tell(
        session,
        case=case,
        review=latest,
        event="review_cancelled",
        roles=(Role.lead, Role.coordinator),
        now=now,
    )
    return scheduled


def review_cancelled_outside(session: Session, *, review: Review, now: datetime) -> bool:
    """A scheduled review whose run was cancelled or deleted in Prefect: the review is
    cancelled, the case left without a next review, the coordinator told once."""
    if review.status != ReviewStatus.scheduled:
        return False
    case = session.get(Case, review.case_id)
    assert case is not None
    review.status = ReviewStatus.cancelled
    session.add(review)
    session.flush()
    if case.phase == Phase.review_scheduled and not scheduled_reviews(
        session, case_id=saved_id(case)
    ):
        set_phase(session, case=case, phase=Phase.review_cancelled, now=now)
    audit(
        session,
        action="review.cancelled_outside",
        case_id=case.id,
        actor_id=None,
        at=now,
        detail=f"cycle {review.cycle}: v{review.version} {review.due_at:%Y-%m-%d}; its flow run "
        "was cancelled or deleted in Prefect",
    )
    _tell(session, case=case, review=review, event="review_run_cancelled", roles=None, now=now)
    return True


def run_cancelled_by_hand(session: Session, *, case: Case, flow_run_id: str, now: datetime) -> bool:
    """The case's own run was cancelled outside caseconf: audited and the coordinator told,
    once per run. False if it was already recorded."""
    key = f"run-cancelled/{flow_run_id}"
    if ledger.recorded(session, key=key) is not None:
        return False
    audit(
        session,
        action="case.run_cancelled",
        case_id=case.id,
        actor_id=None,
        at=now,
        detail=f"cycle {case.cycle}, phase {case.phase}: flow run {flow_run_id} was cancelled "
        "outside caseconf",
    )
    ids = _tell(
        session,
        case=case,
        review=None,
        event="case_run_cancelled",
        roles=None,
        now=now,
        key_event=f"case_run_cancelled:{flow_run_id}",
    )
    ledger.record(session, key=key, case_id=case.id, result={"notification_ids": ids})
    return True


def _recipients(
    session: Session, *, conference: Conference, roles: tuple[Role, ...] | None
) -> list[tuple[int, Role]]:
    """Each agency once, in the first of `roles` it holds; None: the coordinator, else the lead."""
    held = [
        (p.agency_id, Role(p.role))
        for p in session.exec(
            select(Participant)
            .where(Participant.conference_id == conference.id)
            .order_by(col(Participant.id))
        )
        if p.agency_id is not None
    ]
    if roles is None:
        for role in (Role.coordinator, Role.lead):
            first = next(((a, r) for a, r in held if r == role), None)
            if first is not None:
                return [first]
        return []
    found: dict[int, Role] = {}
    for role in roles:
        for agency_id, held_role in held:
            if held_role == role:
                found.setdefault(agency_id, role)
    return list(found.items())


def _tell(
    session: Session,
    *,
    case: Case,
    review: Review | None,
    event: str,
    roles: tuple[Role, ...] | None,
    now: datetime,
    previous: Review | None = None,
    key_event: str | None = None,
) -> list[int]:
    """Queue `event` to the latest conference's lead and coordinator (or `roles`)."""
    conference = last_conference(session, case=case)
    if conference is None:
        return []
    detail: dict[str, object] = {}
    if review is not None:
        detail["review_id"] = review.id
    if previous is not None:
        detail["previous_review_id"] = previous.id
    ids: list[int] = []
    for agency_id, role in _recipients(session, conference=conference, roles=roles):
        ids += queue_to_agency(
            session,
            case=case,
            conference=conference,
            event=event,
            agency_id=agency_id,
            role=role,
            now=now,
            key_event=key_event,
            cycle=review.cycle if review else case.cycle,
            version=review.version if review else 0,
            detail=detail,
        )
    return ids
