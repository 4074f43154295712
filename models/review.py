"""Review conferences: when the next one falls due and the key that schedules it once."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pendulum
from sqlmodel import Session, select

from models.errors import Refusal
from models.tables import Case, Review

__all__ = ["Review", "default_review_date", "plan_review", "review_key", "review_starts_at"]
from models.vocabulary import ReviewStatus

REVIEW_START = time(10, 0)
# The review's run starts this long before the review conference, so invitations go out in time.
PREPARATION_LEAD = timedelta(days=14)


def default_review_date(*, decided_on: date, weeks: int) -> date:
    """The profile's cadence: the first review N weeks after the decision."""
    return pendulum.Date(decided_on.year, decided_on.month, decided_on.day).add(weeks=weeks)


def review_starts_at(*, on: date, time_zone: str) -> datetime:
    """When the review conference is due: the morning of its date in the conference's time zone."""
    return datetime.combine(on, REVIEW_START, tzinfo=ZoneInfo(time_zone))


def review_run_at(*, due_at: datetime, now: datetime) -> datetime:
    """When the review's flow run starts: its preparation lead before the review, never in the past."""
    return max(due_at - PREPARATION_LEAD, now + timedelta(minutes=1))


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
        case_id=case.id,  # type: ignore[arg-type]
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
