"""Without consent: go on as a security conference, or close the case. Asked by the consent gate
(flows/cycle.py) when a type that needs consent finds none in force before a step."""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, acting
from models.record.audit import audit
from models.record.database import saved_id
from models.rules import cases, conference
from models.steps.step import Applied, Asked, Step, acting_choices, heading
from models.vocabulary import AfterRefusal, ClosureReason, Phase


class ConsentRefused(BaseModel):
    model_config = ANSWER_CONFIG

    next_step: AfterRefusal = Field(
        description="Without consent there is no social-network conference: go on as a security "
        "case, or close the case."
    )
    reason: str = Field(
        description="Why (recorded with the decision; no names).", min_length=3, max_length=500
    )
    acting_representative: str = acting()


def describe(session: Session, asked: Asked, now: datetime) -> str:
    return heading(session, asked, "no consent, no social-network conference") + (
        "The client has not given (or no longer gives) consent. The case can go on as a "
        "security case, without client and family, or close. Say why."
    )


def apply(session: Session, asked: Asked, answer: ConsentRefused, now: datetime) -> Applied:
    """Close the case with the reason, or go on as a security conference: with participants
    confirmed already, the security type's selection replaces them (`stakeholders-security`)."""
    rep = cases.acting_representative(session, code=answer.acting_representative)
    case = asked.case(session)
    reselect = False
    if answer.next_step == AfterRefusal.close:
        cases.close_case(
            session,
            case=case,
            reason=ClosureReason.consent_refused,
            actor_id=rep.id,
            note=answer.reason,
            now=now,
        )
    else:
        held = asked.conference(session)
        conference.continue_as_security(session, case=case, conference=held)
        reselect = bool(conference.participants(session, conference_id=saved_id(held)))
        audit(
            session,
            action="conference.continued_as_security",
            case_id=case.id,
            actor_id=rep.id,
            at=now,
            justification=answer.reason,
        )
    return Applied({"next_step": str(answer.next_step), "reselect": reselect})


STEP = Step(
    name="consent-refused",
    phase=Phase.consent,
    form=ConsentRefused,
    describe=describe,
    apply=apply,
    choices=acting_choices,
)
