"""The decision phase: the professionals decide the family's plan item by item, record further
decisions and the actions agreed (owner agency, due date), and the date of the next conference,
or the reason the conference closes the case."""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, Choices, acting
from models.record.audit import audit
from models.record.database import saved_id
from models.rules import cases, choices, conference, stages
from models.rules.conference import ActionEntry, PlanDecisionEntry
from models.steps.step import Applied, Asked, Step, heading
from models.vocabulary import ClosureReason, ConferenceType, Phase, Stage


class Decision(BaseModel):
    model_config = ANSWER_CONFIG

    plan_decisions: list[PlanDecisionEntry] = Field(
        default=[],  # not a factory: the flow pre-fills one entry per plan item
        description="Social-network conferences: one decision per plan item listed above "
        "(an entry per item is ready: give its outcome and reason).",
        validate_default=True,
    )
    decisions: list[str] = Field(
        default_factory=list,
        description="Further decisions of the professionals, one per entry (no names); "
        "professional: the client and family do not read them. Without a drafted plan, at "
        "least one decision, shared decision or action is needed.",
    )
    shared_decisions: list[str] = Field(
        default_factory=list,
        description="Further decisions that the client and family may read in their minutes "
        "(shared), one per entry (no names).",
    )
    actions: list[ActionEntry] = Field(
        default_factory=list, description="Actions agreed, each with an owner agency and due date."
    )
    next_review_on: date | None = Field(
        default=None,
        description="Date of the next conference (proposed by the profile's rules, above). "
        "Not used when the case closes.",
    )
    close_reason: ClosureReason | None = Field(
        default=None,
        description="Only when the conference decides to close the case: why. The decision is "
        "released as usual, then the case closes and no next conference is scheduled.",
    )
    acting_representative: str = acting()


NO_PLAN = "_No plan items._"


def next_conference(session: Session, asked: Asked, now: datetime) -> stages.NextConference:
    """The next conference's date by the profile's rules, and the rule behind it."""
    case, held = asked.case(session), asked.conference(session)
    return stages.next_conference(
        profile=asked.profile(session),
        stage=Stage(case.stage),
        decided_on=stages.case_today(session, case=case, now=now),
        release_on=case.release_on,
        released_on=case.released_on,
        held_since_move=stages.held_since_move(
            session, case=case, conference_created_at=held.created_at
        ),
    )


def _plan(session: Session, asked: Asked) -> list[Any]:
    return conference.plan_items(session, conference_id=saved_id(asked.conference(session)))


def _has_plan(session: Session, asked: Asked) -> bool:
    """A social-network conference decides the family's plan; one that went on as security
    after the family-only phase keeps the plan drafted: it is decided all the same."""
    return asked.conference_type(session) == ConferenceType.social_network or bool(
        _plan(session, asked)
    )


def describe(session: Session, asked: Asked, now: datetime) -> str:
    due = next_conference(session, asked, now)
    plan = ""
    if _has_plan(session, asked):
        drafted = "\n".join(
            f"{p.number}. {p.text} *({p.classification})*" for p in _plan(session, asked)
        )
        plan = (
            "\n\n**The family's plan.** Decide each item: accepted, amended (give the "
            "amendment) or rejected, each with a reason, and who may read it (classification; "
            "the family's own items are shared unless you say professional).\n\n"
            + (drafted or NO_PLAN)
        )
    return heading(session, asked, "the decision phase") + (
        "Record the professionals' decisions and the actions agreed, each with an owner "
        "agency of this conference and a due date, and the date of the next conference "
        f"(proposed: {due.on.isoformat()}, {due.rule}); or, if the conference closes the case, "
        "the reason." + plan
    )


def offered(session: Session, asked: Asked, now: datetime) -> Choices:
    """Owners of actions (the conference's professionals); plan items and actions are never
    restricted."""
    assert asked.conference_id is not None
    return {
        "actions.owner_agency": choices.owners(session, asked.conference_id),
        "actions.classification": choices.item_classifications(),
        "plan_decisions.classification": choices.item_classifications(),
        "acting_representative": choices.representatives(session),
    }


def defaults(session: Session, asked: Asked, now: datetime) -> dict[str, Any]:
    """The proposed date, and one entry per plan item, ready for its outcome and reason."""
    found: dict[str, Any] = {"next_review_on": next_conference(session, asked, now).on}
    if _has_plan(session, asked):
        found["plan_decisions"] = [{"item": p.number} for p in _plan(session, asked)]
    return found


def apply(session: Session, asked: Asked, answer: Decision, now: datetime) -> Applied:
    rep = cases.acting_representative(session, code=answer.acting_representative)
    case = asked.case(session)
    action_ids = conference.record_decision(
        session,
        case=case,
        conference=asked.conference(session),
        plan_decisions=answer.plan_decisions,
        decisions=answer.decisions,
        shared_decisions=answer.shared_decisions,
        actions=answer.actions,
        next_review_on=answer.next_review_on,
        today=stages.case_today(session, case=case, now=now),
        closes=answer.close_reason is not None,
    )
    audit(session, action="conference.decision", case_id=case.id, actor_id=rep.id, at=now)
    result = {
        "action_ids": action_ids,
        "next_review_on": answer.next_review_on.isoformat() if answer.next_review_on else None,
        "close_reason": answer.close_reason,
        "actor_id": rep.id,
    }
    return Applied(result, next_phase=Phase.release)


STEP = Step(
    name="decision",
    phase=Phase.decision,
    form=Decision,
    describe=describe,
    apply=apply,
    choices=offered,
    defaults=defaults,
    late_after_days=7,
)
