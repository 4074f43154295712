"""The consent ledger: records are appended, never edited; the newest record per scope decides."""

from collections.abc import Iterable
from datetime import date, datetime

from sqlmodel import Session, col, select

from models.config.profile import ConferenceTypeRules
from models.errors import Refusal
from models.record.audit import audit
from models.record.tables import ConsentRecord
from models.vocabulary import ConsentDecision, ConsentScope, Phase

#: The steps of a conference cycle in the order they run; a scope is needed up to a phase.
#: What comes before a conference's phases, and after them, in every cycle.
BEFORE_PHASES: tuple[Phase, ...] = (
    Phase.preparation,
    Phase.consent,
    Phase.stakeholders,
    Phase.invitation,
)

#: The last step a scope is needed for; a scope not listed is needed before every step.
NEEDED_UNTIL: dict[ConsentScope, Phase] = {ConsentScope.family_involvement: Phase.family_only}


def record_consent(
    session: Session,
    *,
    case_id: int,
    scope: str,
    decision: ConsentDecision,
    recorded_by_id: int,
    expires_on: date | None,
    now: datetime,
    today: date | None = None,
) -> ConsentRecord:
    """Append one record; `today` is the day where the case's conferences meet (default: the
    UTC day of `now`), against which an expiry must lie in the future."""
    day = today or now.date()
    if decision == ConsentDecision.granted and expires_on is not None and expires_on <= day:
        raise Refusal.of("expires_on", "a consent that is granted must expire after today")
    record = ConsentRecord(
        case_id=case_id,
        scope=scope,
        decision=decision,
        recorded_by_id=recorded_by_id,
        expires_on=expires_on if decision == ConsentDecision.granted else None,
        recorded_at=now,
    )
    session.add(record)
    session.flush()
    audit(
        session,
        action=f"consent.{decision}",
        case_id=case_id,
        actor_id=recorded_by_id,
        at=now,
        detail=scope,
    )
    return record


def ledger(session: Session, *, case_id: int) -> list[ConsentRecord]:
    query = select(ConsentRecord).where(ConsentRecord.case_id == case_id)
    return list(session.exec(query.order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))))


def in_force(records: Iterable[ConsentRecord], *, scope: str, today: date) -> bool:
    """True only if the newest record for the scope grants it and has not expired by `today`."""
    mine = [r for r in records if r.scope == scope]
    if not mine:
        return False
    latest = max(mine, key=lambda r: (r.recorded_at, r.id or 0))
    if latest.decision != ConsentDecision.granted:
        return False
    return latest.expires_on is None or latest.expires_on >= today


def cycle_steps(rules: ConferenceTypeRules) -> list[str]:
    """A cycle of this type in order: the steps before the conference, its phases, the release.
    A type without a family_only phase counts it where it would stand, before the decision."""
    phases = list(rules.phases)
    if Phase.family_only not in phases:
        phases.insert(phases.index(Phase.decision), Phase.family_only)
    return [*BEFORE_PHASES, *phases, Phase.release]


def needed_scopes(rules: ConferenceTypeRules, phase: str) -> list[ConsentScope]:
    """The scopes a type needs before `phase`: family_involvement up to the family_only phase,
    every other listed scope before every step."""
    order = cycle_steps(rules)
    at = order.index(phase)
    return [
        scope
        for scope in rules.consent_scopes
        if scope not in NEEDED_UNTIL or at <= order.index(NEEDED_UNTIL[scope])
    ]


def missing_consent(
    rules: ConferenceTypeRules, phase: str, records: Iterable[ConsentRecord], today: date
) -> list[ConsentScope]:
    """The scopes needed before `phase` that are not in force `today`; empty means go."""
    records = list(records)
    return [
        scope
        for scope in needed_scopes(rules, phase)
        if not in_force(records, scope=scope, today=today)
    ]


def consent_in_force(session: Session, *, case_id: int, scope: str, today: date) -> bool:
    """True only if the newest record for the scope grants it and has not expired."""
    latest = session.exec(
        select(ConsentRecord)
        .where(ConsentRecord.case_id == case_id, ConsentRecord.scope == scope)
        .order_by(col(ConsentRecord.recorded_at).desc(), col(ConsentRecord.id).desc())
    ).first()
    if latest is None or latest.decision != ConsentDecision.granted:
        return False
    return latest.expires_on is None or latest.expires_on >= today


def withdraw(
    session: Session, *, case_id: int, recorded_by_id: int, now: datetime
) -> ConsentRecord:
    """The client withdraws consent to the social-network conference: a new record, no reason."""

    return record_consent(
        session,
        case_id=case_id,
        scope=ConsentScope.social_network_conference,
        decision=ConsentDecision.withdrawn,
        recorded_by_id=recorded_by_id,
        expires_on=None,
        now=now,
    )
