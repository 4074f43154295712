"""Consent: the client's answer to a social-network conference, recorded before any invitation
goes out (asked only where the conference's type needs consent and none is in force)."""

from datetime import date, datetime

from pydantic import BaseModel, Field
from sqlmodel import Session

from models.answers import ANSWER_CONFIG, acting
from models.rules import cases, consent
from models.rules.stages import case_today
from models.steps.step import Applied, Asked, Step, acting_choices, heading
from models.vocabulary import ConsentAnswer, ConsentDecision, ConsentScope, Phase


class Consent(BaseModel):
    model_config = ANSWER_CONFIG

    client_consent: ConsentAnswer = Field(
        description="The client's answer to taking part in a social-network conference."
    )
    family_involvement: bool = Field(
        default=True,
        description="The client also agrees that family and friends are involved.",
    )
    expires_on: date | None = Field(
        default=None, description="When the consent lapses, if the client set a limit."
    )
    acting_representative: str = acting()


def describe(session: Session, asked: Asked, now: datetime) -> str:
    return heading(session, asked, "the client's consent") + (
        "A social-network conference takes place only with the client's consent, "
        "recorded before any invitation goes out. Record the client's answer as given "
        "to you; a refusal needs no reason from the client."
    )


def apply(session: Session, asked: Asked, answer: Consent, now: datetime) -> Applied:
    case = asked.case(session)
    assert case.id is not None
    today = case_today(session, case=case, now=now)
    rep = cases.acting_representative(session, code=answer.acting_representative)
    assert rep.id is not None
    decision = (
        ConsentDecision.granted
        if answer.client_consent == ConsentAnswer.granted
        else ConsentDecision.refused
    )
    ids = [
        consent.record_consent(
            session,
            case_id=case.id,
            scope=ConsentScope.social_network_conference,
            decision=decision,
            recorded_by_id=rep.id,
            expires_on=answer.expires_on,
            now=now,
            today=today,
        ).id
    ]
    if decision == ConsentDecision.granted:
        family = ConsentDecision.granted if answer.family_involvement else ConsentDecision.refused
        ids.append(
            consent.record_consent(
                session,
                case_id=case.id,
                scope=ConsentScope.family_involvement,
                decision=family,
                recorded_by_id=rep.id,
                expires_on=answer.expires_on,
                now=now,
                today=today,
            ).id
        )
    return Applied({"consent_ids": ids, "granted": decision == ConsentDecision.granted})


STEP = Step(
    name="consent",
    phase=Phase.consent,
    form=Consent,
    describe=describe,
    apply=apply,
    choices=acting_choices,
    late_after_days=7,
)
