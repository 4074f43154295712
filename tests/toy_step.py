"""A toy human step, as an installation would add one: this module and its registration, nothing
else. Its phase, `check_in`, is one a profile may list between information and decision; its
form asks whether every participant was reached, and its answer is audited."""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, acting
from models.record.audit import audit
from models.rules import cases
from models.steps.registry import register
from models.steps.step import Applied, Asked, Step, acting_choices, heading

PHASE = "check_in"


class CheckIn(BaseModel):
    model_config = ANSWER_CONFIG

    everyone_reached: bool = Field(description="Every participant confirmed they will attend.")
    acting_representative: str = acting()


def describe(session: Session, asked: Asked, now: datetime) -> str:
    return heading(session, asked, "check-in") + "Has every participant confirmed?"


def apply(session: Session, asked: Asked, answer: CheckIn, now: datetime) -> Applied:
    rep = cases.acting_representative(session, code=answer.acting_representative)
    audit(
        session,
        action="toy.checked_in",
        case_id=asked.case_id,
        actor_id=rep.id,
        at=now,
        detail=f"everyone reached: {answer.everyone_reached}",
    )
    rules = asked.profile(session).rules_for(asked.conference_type(session))
    return Applied({"reached": answer.everyone_reached}, next_phase=rules.phase_after(PHASE))


STEP = register(
    Step(
        name="check-in",
        phase=PHASE,
        form=CheckIn,
        describe=describe,
        apply=apply,
        choices=acting_choices,
        late_after_days=2,
    )
)
