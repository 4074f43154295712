"""Consent: checked, never from cache, before every step of a conference type that needs it."""

from models.config.profile import Profile, load_profile
from models.record.database import session_scope
from models.rules import cases, conference, consent
from models.rules.stages import case_today
from models.vocabulary import ConferenceType
from tasks.policies import now


def missing_consent(
    case_id: int, conference_id: int, phase: str, profile: Profile | None = None
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
