"""Consent: record the client's answer; check it, never from cache, before every step that needs it."""

from prefect import task
from sqlmodel import Session

from models.config.profile import Profile, load_profile
from models.record.audit import audit
from models.record.database import session_scope
from models.rules import cases, conference, consent
from models.rules.stages import case_today
from models.steps.forms import AfterRefusal, Consent, ConsentAnswer, ConsentRefused
from models.vocabulary import ClosureReason, ConferenceType, ConsentDecision, ConsentScope, Phase
from tasks.policies import CHECK, DATABASE_RETRIES, StepOutcome, apply_once, now


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def consent_in_force(case_id: int, scope: str = ConsentScope.social_network_conference) -> bool:
    with session_scope() as session:
        today = case_today(session, case=cases.get_case(session, case_id), now=now())
        return consent.consent_in_force(session, case_id=case_id, scope=scope, today=today)


def missing_consent(
    case_id: int, conference_id: int, phase: Phase, profile: Profile | None = None
) -> list[str]:
    """The scopes the conference's type needs before `phase` that are not in force today,
    read from the ledger at each call (never from cache); by the case's profile (as read for
    this replay, or read now)."""
    with session_scope() as session:
        case = cases.get_case(session, case_id)
        held = conference.get_conference(session, conference_id)
        profile = profile if profile is not None else load_profile(case.profile)
        rules = profile.rules_for(ConferenceType(held.conference_type))
        records = consent.ledger(session, case_id=case_id)
        # Expiry dates count in the case's own day (at 23:30 UTC it is tomorrow in Vienna).
        today = case_today(session, case=case, now=now())
        return [str(s) for s in consent.missing_consent(rules, phase, records, today)]


@task(**DATABASE_RETRIES)
def record_consent(step_key: str, attempt: int, case_id: int, answer: Consent) -> StepOutcome:
    def write(session: Session) -> dict[str, object]:
        at = now()
        today = case_today(session, case=cases.get_case(session, case_id), now=at)
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
                case_id=case_id,
                scope=ConsentScope.social_network_conference,
                decision=decision,
                recorded_by_id=rep.id,
                expires_on=answer.expires_on,
                now=at,
                today=today,
            ).id
        ]
        if decision == ConsentDecision.granted:
            family = (
                ConsentDecision.granted if answer.family_involvement else ConsentDecision.refused
            )
            ids.append(
                consent.record_consent(
                    session,
                    case_id=case_id,
                    scope=ConsentScope.family_involvement,
                    decision=family,
                    recorded_by_id=rep.id,
                    expires_on=answer.expires_on,
                    now=at,
                    today=today,
                ).id
            )
        return {"consent_ids": ids, "granted": decision == ConsentDecision.granted}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)


@task(**DATABASE_RETRIES)
def after_refusal(
    step_key: str, attempt: int, case_id: int, conference_id: int, answer: ConsentRefused
) -> StepOutcome:
    """Without consent: go on as a security conference, or close the case with the reason."""

    def write(session: Session) -> dict[str, object]:
        at = now()
        rep = cases.acting_representative(session, code=answer.acting_representative)
        case = cases.get_case(session, case_id)
        reselect = False
        if answer.next_step == AfterRefusal.close:
            cases.close_case(
                session,
                case=case,
                reason=ClosureReason.consent_refused,
                actor_id=rep.id,
                note=answer.reason,
                now=at,
            )
        else:
            conference.continue_as_security(
                session, case=case, conference=conference.get_conference(session, conference_id)
            )
            # Participants confirmed already: the security type's selection replaces them
            # (flows/cycle.py asks the coordinator to confirm it before anything else).
            reselect = bool(conference.participants(session, conference_id=conference_id))
            audit(
                session,
                action="conference.continued_as_security",
                case_id=case_id,
                actor_id=rep.id,
                at=at,
                justification=answer.reason,
            )
        return {"next_step": str(answer.next_step), "reselect": reselect}

    return apply_once(step_key=step_key, case_id=case_id, attempt=attempt, write=write)
