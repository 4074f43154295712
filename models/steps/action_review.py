"""The action review: at every review conference, before its information phase, each open
action is done, not done (with a reason code) or carried over (with a new due date)."""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, acting
from models.record.audit import audit
from models.rules import actions, cases
from models.rules.actions import ActionUpdate
from models.rules.stages import case_today
from models.steps.step import Applied, Asked, Step, acting_choices, heading
from models.vocabulary import Phase


class ActionReview(BaseModel):
    model_config = ANSWER_CONFIG

    updates: list[ActionUpdate] = Field(
        default_factory=list, description="One entry per open action listed above."
    )
    acting_representative: str = acting()


def in_a_review(session: Session, asked: Asked, now: datetime) -> bool:
    """Only review conferences have actions to review: the first conference has none yet."""
    return asked.case(session).cycle > 1


def describe(session: Session, asked: Asked, now: datetime) -> str:
    assert asked.case_id is not None
    return heading(session, asked, "review of the open actions") + (
        "Go through every open action: done, not done (with a reason code) or carried over "
        "(with a new due date).\n\n" + actions.describe_open_actions(session, case_id=asked.case_id)
    )


def apply(session: Session, asked: Asked, answer: ActionReview, now: datetime) -> Applied:
    rep = cases.acting_representative(session, code=answer.acting_representative)
    case = asked.case(session)
    assert case.id is not None
    updated = actions.review_open_actions(
        session,
        case_id=case.id,
        updates=answer.updates,
        today=case_today(session, case=case, now=now),
        now=now,
    )
    audit(session, action="actions.reviewed", case_id=case.id, actor_id=rep.id, at=now)
    return Applied({"action_ids": updated})


STEP = Step(
    name="action-review",
    phase=Phase.information,
    form=ActionReview,
    describe=describe,
    apply=apply,
    choices=acting_choices,
    asks=in_a_review,
)
