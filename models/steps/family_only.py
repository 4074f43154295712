"""The family-only phase: the client, family and friends draft their own plan with no
professionals present; the coordinator records it as they wrote it, without names."""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, acting
from models.record.audit import audit
from models.rules import cases, conference
from models.steps.step import Applied, Asked, Step, acting_choices, heading
from models.vocabulary import Phase


class FamilyPlan(BaseModel):
    model_config = ANSWER_CONFIG

    plan_items: list[str] = Field(
        description="The plan the client, family and friends drafted, one item per entry, "
        "in their own order (no names).",
        min_length=1,
    )
    acting_representative: str = acting()


def describe(session: Session, asked: Asked, now: datetime) -> str:
    return heading(session, asked, "the family-only phase") + (
        "The client, family and friends draft their own plan, with no professionals "
        "present. Record their plan items as they wrote them, without names."
    )


def apply(session: Session, asked: Asked, answer: FamilyPlan, now: datetime) -> Applied:
    rep = cases.acting_representative(session, code=answer.acting_representative)
    rules = asked.profile(session).rules_for(asked.conference_type(session))
    next_phase = rules.phase_after(Phase.family_only)
    ids = conference.record_family_plan(
        session,
        conference=asked.conference(session),
        items=answer.plan_items,
        next_phase=next_phase,
    )
    audit(session, action="conference.family_plan", case_id=asked.case_id, actor_id=rep.id, at=now)
    return Applied({"plan_item_ids": ids}, next_phase=next_phase)


STEP = Step(
    name="family-only",
    phase=Phase.family_only,
    form=FamilyPlan,
    describe=describe,
    apply=apply,
    choices=acting_choices,
    late_after_days=14,
)
