"""The information phase: each agency contributes what it knows, one item each, classified;
restricted items are pointers only (caseconf never stores their content)."""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, Choices, acting
from models.record.audit import audit
from models.rules import cases, choices, conference
from models.rules.conference import InformationEntry
from models.steps.step import Applied, Asked, Step, heading
from models.vocabulary import Phase


class Information(BaseModel):
    model_config = ANSWER_CONFIG

    # Not `items`: the v2 UI checks a form against JSON Schema with a property named `items`
    # taken for the keyword, and cannot submit it.
    contributions: list[InformationEntry] = Field(
        default_factory=list,
        description="What each agency contributes, one entry per item.",
    )
    acting_representative: str = acting()


def describe(session: Session, asked: Asked, now: datetime) -> str:
    return heading(session, asked, "the information phase") + (
        "Each agency contributes what it knows, one entry per item, with its "
        "classification:\n"
        "- **restricted** (security conferences only, from an agency cleared for it): give "
        "only a *pointer*, which agency holds what and where; caseconf never stores the "
        "content;\n"
        "- **professional**: a short summary for the professionals of this conference;\n"
        "- **shared**: a short summary that may also reach the client and family.\n\n"
        "Write no names."
    )


def offered(session: Session, asked: Asked, now: datetime) -> Choices:
    """Contributors attending the information phase; the classifications the type allows."""
    assert asked.conference_id is not None
    return {
        "contributions.agency": choices.contributors(session, asked.conference_id),
        "contributions.classification": choices.information_classifications(
            asked.conference_type(session)
        ),
        "acting_representative": choices.representatives(session),
    }


def apply(session: Session, asked: Asked, answer: Information, now: datetime) -> Applied:
    rep = cases.acting_representative(session, code=answer.acting_representative)
    rules = asked.profile(session).rules_for(asked.conference_type(session))
    next_phase = rules.phase_after(Phase.information)
    ids = conference.record_information(
        session,
        conference=asked.conference(session),
        entries=answer.contributions,
        next_phase=next_phase,
        now=now,
    )
    audit(
        session,
        action="conference.information",
        case_id=asked.case_id,
        actor_id=rep.id,
        at=now,
        detail=f"{len(ids)} items",
    )
    return Applied({"information_ids": ids}, next_phase=next_phase)


STEP = Step(
    name="information",
    phase=Phase.information,
    form=Information,
    describe=describe,
    apply=apply,
    choices=offered,
    late_after_days=14,
)
