"""Preparation: the conference type, when and where the cycle's conference meets."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlmodel import Session, select

from models.answers import ANSWER_CONFIG, Choices, acting
from models.config.settings import get_settings
from models.record.audit import audit
from models.record.tables import Agency, Review
from models.rules import cases, choices, conference, venues
from models.rules.review import REVIEW_START
from models.steps.step import Applied, Asked, Step, heading
from models.vocabulary import ConferenceKind, ConferenceType, Phase

#: The place field's description, here and where a conference is rescheduled.
PLACE = (
    "Where the conference meets: a venue of the directory (a meeting room or a video link). "
    "The place travels in every invitation and hand-over request, so it never names anything "
    "about the client or the family."
)


class Preparation(BaseModel):
    model_config = ANSWER_CONFIG

    conference_type: ConferenceType = Field(
        description="security: security authorities exchange confidential information; client "
        "and family do not take part. social_network: with the client's consent, client and "
        "family take part (who leads follows the profile)."
    )
    starts_at: datetime = Field(
        description="When the conference starts. A time without an offset is read in the time "
        "zone below."
    )
    time_zone: str = Field(
        description="IANA time zone of the conference, e.g. Europe/Vienna.", max_length=64
    )
    location: str = Field(description=PLACE, min_length=2, max_length=300)
    acting_representative: str = acting()


def describe(session: Session, asked: Asked, now: datetime) -> str:
    case = asked.case(session)
    review = "review " if case.cycle > 1 else ""
    return heading(session, asked, f"prepare the {review}conference") + (
        "Choose the conference type, when and where it meets. The next form proposes who "
        "takes part, by the rules of profile "
        f"**{asked.profile(session).name}**.\n\n"
        "- *security*: security authorities exchange confidential information; the client "
        "and family do not take part; no consent is needed.\n"
        "- *social_network*: the client, family and welfare services take part; only with "
        "the client's recorded consent. Who leads follows the profile."
    )


def offered(session: Session, asked: Asked, now: datetime) -> Choices:
    """The directory's venues (unless this installation lets coordinators type a place)."""
    found = {"acting_representative": choices.representatives(session)}
    if not get_settings().free_text_place:
        found["location"] = choices.venues(session)
    return found


def defaults(session: Session, asked: Asked, now: datetime) -> dict[str, Any]:
    """The case's type (else the profile's default), in the referring agency's time zone: a
    review on its due date, a first conference two weeks from today; both at 10:00."""
    case = asked.case(session)
    agency = session.get(Agency, case.referring_agency_id)
    time_zone = agency.time_zone if agency else "UTC"
    due = session.exec(
        select(Review.due_at).where(Review.case_id == case.id, Review.cycle == case.cycle)
    ).first()
    zone = ZoneInfo(time_zone)
    day = due.astimezone(zone).date() if due else now.astimezone(zone).date() + timedelta(days=14)
    return {
        "conference_type": case.conference_type or asked.profile(session).default_conference_type,
        "time_zone": time_zone,
        "starts_at": datetime.combine(day, REVIEW_START),
    }


def apply(session: Session, asked: Asked, answer: Preparation, now: datetime) -> Applied:
    """Open the cycle's conference: type, time and place."""
    rep = cases.acting_representative(session, code=answer.acting_representative)
    case = asked.case(session)
    row = conference.open_conference(
        session,
        case=case,
        kind=ConferenceKind.first if case.cycle == 1 else ConferenceKind.review,
        conference_type=answer.conference_type,
        starts_at=conference.aware_start(answer.starts_at, answer.time_zone),
        time_zone=answer.time_zone,
        location=venues.place(session, answer.location, free_text=get_settings().free_text_place),
        now=now,
    )
    audit(
        session,
        action="conference.prepared",
        case_id=case.id,
        actor_id=rep.id,
        at=now,
        detail=f"cycle {case.cycle}, {answer.conference_type}",
    )
    assert row.id is not None
    return Applied({"conference_id": row.id}, next_phase=Phase.stakeholders)


STEP = Step(
    name="preparation",
    phase=Phase.preparation,
    form=Preparation,
    describe=describe,
    apply=apply,
    choices=offered,
    defaults=defaults,
    late_after_days=7,
)
