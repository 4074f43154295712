"""The consent ledger: append-only, the newest record per scope decides, expiry stops consent."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from models.config.profile import load_profile
from models.errors import Refusal
from models.record.tables import Case, ConsentRecord
from models.rules.cases import refer_case, representative_by_code
from models.rules.consent import consent_in_force, ledger, missing_consent, record_consent
from models.rules.consent import in_force as pure_in_force
from models.vocabulary import (
    ConferenceType,
    ConsentDecision,
    ConsentScope,
    Need,
    Phase,
    Stage,
    share_with_scope,
)

pytestmark = pytest.mark.database

NOW = datetime(2033, 5, 10, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
SCOPE = str(ConsentScope.social_network_conference)


@pytest.fixture
def case(session: Session) -> Case:
    return refer_case(
        session,
        referring_agency="neustart-wien",
        file_number="CONSENT-1",
        stage=Stage.post_release,
        needs=[Need.family_support],
        profile="generic",
        acting_representative_code="neustart-wien-1",
        reference_prefix="CONS",
        flow_run_id=None,
        now=NOW,
    )


@pytest.fixture
def recorder(session: Session) -> int:
    rep = representative_by_code(session, "neustart-wien-2")
    assert rep is not None and rep.id is not None
    return rep.id


def consent(
    session: Session,
    case: Case,
    recorder: int,
    decision: ConsentDecision,
    *,
    at: datetime = NOW,
    expires_on: date | None = None,
    scope: str = SCOPE,
) -> ConsentRecord:
    assert case.id is not None
    return record_consent(
        session,
        case_id=case.id,
        scope=scope,
        decision=decision,
        recorded_by_id=recorder,
        expires_on=expires_on,
        now=at,
    )


def in_force(session: Session, case: Case, today: date = TODAY, scope: str = SCOPE) -> bool:
    assert case.id is not None
    return consent_in_force(session, case_id=case.id, scope=scope, today=today)


def test_no_record_means_no_consent(session: Session, case: Case) -> None:
    assert not in_force(session, case)


def test_granted_without_expiry_is_in_force(session: Session, case: Case, recorder: int) -> None:
    consent(session, case, recorder, ConsentDecision.granted)
    assert in_force(session, case)
    assert in_force(session, case, today=TODAY + timedelta(days=3650))


def test_granted_consent_expires(session: Session, case: Case, recorder: int) -> None:
    expiry = TODAY + timedelta(days=30)
    consent(session, case, recorder, ConsentDecision.granted, expires_on=expiry)
    assert in_force(session, case, today=expiry)
    assert not in_force(session, case, today=expiry + timedelta(days=1))


def test_withdrawal_after_grant_stops_consent(session: Session, case: Case, recorder: int) -> None:
    consent(session, case, recorder, ConsentDecision.granted)
    consent(session, case, recorder, ConsentDecision.withdrawn, at=NOW + timedelta(hours=1))
    assert not in_force(session, case)


def test_refused_consent_is_not_in_force(session: Session, case: Case, recorder: int) -> None:
    consent(session, case, recorder, ConsentDecision.refused)
    assert not in_force(session, case)


def test_newest_record_decides(session: Session, case: Case, recorder: int) -> None:
    consent(session, case, recorder, ConsentDecision.refused)
    consent(session, case, recorder, ConsentDecision.granted, at=NOW + timedelta(days=1))
    assert in_force(session, case)
    consent(session, case, recorder, ConsentDecision.withdrawn, at=NOW + timedelta(days=2))
    assert not in_force(session, case)
    consent(session, case, recorder, ConsentDecision.granted, at=NOW + timedelta(days=3))
    assert in_force(session, case)


def test_newest_by_time_not_by_insertion_order(session: Session, case: Case, recorder: int) -> None:
    """A record entered late but dated earlier does not override a newer one."""
    consent(session, case, recorder, ConsentDecision.withdrawn, at=NOW + timedelta(days=1))
    consent(session, case, recorder, ConsentDecision.granted, at=NOW)
    assert not in_force(session, case)


def test_scopes_are_independent(session: Session, case: Case, recorder: int) -> None:
    share = share_with_scope("psd-wien")
    consent(session, case, recorder, ConsentDecision.granted)
    consent(session, case, recorder, ConsentDecision.refused, scope=share)
    assert in_force(session, case)
    assert not in_force(session, case, scope=share)
    assert not in_force(session, case, scope=str(ConsentScope.family_involvement))


@pytest.mark.parametrize("days", [0, -1, -365])
def test_grant_that_expires_today_or_earlier_is_refused(
    session: Session, case: Case, recorder: int, days: int
) -> None:
    with pytest.raises(Refusal) as caught:
        consent(
            session,
            case,
            recorder,
            ConsentDecision.granted,
            expires_on=TODAY + timedelta(days=days),
        )
    assert [p.field for p in caught.value.problems] == ["expires_on"]
    assert (TODAY + timedelta(days=days)).isoformat() not in str(caught.value)
    assert session.exec(select(ConsentRecord).where(ConsentRecord.case_id == case.id)).all() == []


def test_ledger_is_append_only(session: Session, case: Case, recorder: int) -> None:
    assert case.id is not None
    decisions = [
        ConsentDecision.granted,
        ConsentDecision.withdrawn,
        ConsentDecision.granted,
        ConsentDecision.refused,
    ]
    first = consent(session, case, recorder, decisions[0], expires_on=TODAY + timedelta(days=90))
    first_snapshot = (first.id, first.decision, first.expires_on, first.recorded_at)
    for n, decision in enumerate(decisions[1:], start=1):
        consent(session, case, recorder, decision, at=NOW + timedelta(hours=n))
        assert len(ledger(session, case_id=case.id)) == n + 1

    session.expire_all()
    rows = ledger(session, case_id=case.id)
    assert [r.decision for r in rows] == decisions
    assert (rows[0].id, rows[0].decision, rows[0].expires_on, rows[0].recorded_at) == first_snapshot
    assert all(r.recorded_by_id == recorder for r in rows)


def test_expiry_is_kept_only_on_grants(session: Session, case: Case, recorder: int) -> None:
    row = consent(
        session, case, recorder, ConsentDecision.refused, expires_on=TODAY + timedelta(days=5)
    )
    assert row.expires_on is None


# --- property: no social-network step without recorded, unexpired, unwithdrawn consent ---------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_entry = st.tuples(
    st.sampled_from([ConsentDecision.granted, ConsentDecision.refused, ConsentDecision.withdrawn]),
    st.integers(min_value=1, max_value=400),  # days after the record until it expires (granted)
    st.booleans(),  # granted without an expiry
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=st.lists(_entry, max_size=6), check_after=st.integers(min_value=0, max_value=500))
def test_consent_is_in_force_only_when_the_newest_record_grants_it_and_has_not_expired(
    session: Session, case: Case, recorder: int, history: list, check_after: int
) -> None:
    """Whatever the ledger's history, the check says yes exactly when the newest record for the
    scope is a grant that has not expired; the social-network steps run only then."""
    scope = ConsentScope.social_network_conference
    nested = session.begin_nested()
    try:
        assert case.id is not None
        at = NOW
        for i, (decision, days, open_ended) in enumerate(history):
            at = NOW + timedelta(minutes=i)
            expires = (
                None
                if decision != ConsentDecision.granted or open_ended
                else (at.date() + timedelta(days=days))
            )
            record_consent(
                session,
                case_id=case.id,
                scope=scope,
                decision=decision,  # type: ignore[arg-type]
                recorded_by_id=recorder,
                expires_on=expires,
                now=at,
            )
        today = TODAY + timedelta(days=check_after)
        newest = ledger(session, case_id=case.id)[-1] if history else None  # type: ignore[arg-type]
        expected = (
            newest is not None
            and newest.decision == ConsentDecision.granted
            and (newest.expires_on is None or newest.expires_on >= today)
        )
        assert consent_in_force(session, case_id=case.id, scope=scope, today=today) == expected  # type: ignore[arg-type]
        # The pure check the flow's gate uses reads the same ledger the same way.
        records = ledger(session, case_id=case.id)  # type: ignore[arg-type]
        assert pure_in_force(records, scope=scope, today=today) == expected
    finally:
        nested.rollback()


FAMILY = str(ConsentScope.family_involvement)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
GENERIC = load_profile("generic")
SOCIAL = GENERIC.rules_for(ConferenceType.social_network)
SECURITY = GENERIC.rules_for(ConferenceType.security)
STEPS = [
    Phase.consent,
    Phase.stakeholders,
    Phase.invitation,
    Phase.information,
    Phase.family_only,
    Phase.decision,
    Phase.release,
]


def test_family_involvement_is_needed_up_to_the_family_only_phase(
    session: Session, case: Case, recorder: int
) -> None:
    consent(session, case, recorder, ConsentDecision.granted)
    consent(session, case, recorder, ConsentDecision.granted, scope=FAMILY)
    consent(session, case, recorder, ConsentDecision.withdrawn, scope=FAMILY, at=NOW + HOUR)
    records = ledger(session, case_id=case.id)  # type: ignore[arg-type]
    missing = {phase: missing_consent(SOCIAL, phase, records, TODAY) for phase in STEPS}
    assert missing == {
        Phase.consent: [ConsentScope.family_involvement],
        Phase.stakeholders: [ConsentScope.family_involvement],
        Phase.invitation: [ConsentScope.family_involvement],
        Phase.information: [ConsentScope.family_involvement],
        Phase.family_only: [ConsentScope.family_involvement],
        Phase.decision: [],
        Phase.release: [],
    }


def test_an_expired_conference_consent_stops_every_step_and_security_needs_none(
    session: Session, case: Case, recorder: int
) -> None:
    consent(session, case, recorder, ConsentDecision.granted, expires_on=TODAY + DAY)
    consent(session, case, recorder, ConsentDecision.granted, scope=FAMILY)
    records = ledger(session, case_id=case.id)  # type: ignore[arg-type]
    for phase in STEPS:
        assert missing_consent(SOCIAL, phase, records, TODAY + DAY) == []
        assert missing_consent(SOCIAL, phase, records, TODAY + 2 * DAY) == [
            ConsentScope.social_network_conference
        ]
        assert missing_consent(SECURITY, phase, [], TODAY) == []
    assert missing_consent(SOCIAL, Phase.consent, [], TODAY) == [
        ConsentScope.social_network_conference,
        ConsentScope.family_involvement,
    ]


def test_the_flows_gate_reads_the_cases_profile_and_the_committed_ledger(database: str) -> None:
    """`tasks.consent.missing_consent`, which the flow calls before every step, finds the case's
    profile and the conference's type itself and reads the ledger as committed."""
    from models.record.database import session_scope
    from models.rules.conference import open_conference
    from models.vocabulary import ConferenceKind
    from tasks.consent import missing_consent as gate

    now = datetime.now(UTC)  # the task reads the real clock
    with session_scope() as session:  # committed: a prefix of its own, so no other test sees it
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number="GATE-1",
            stage=Stage.custody,
            needs=[],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="GATE",
            flow_run_id=None,
            now=now,
        )
        social = open_conference(
            session,
            case=case,
            kind=ConferenceKind.first,
            conference_type=ConferenceType.social_network,
            starts_at=now + timedelta(days=14),
            time_zone="Europe/Vienna",
            location="Room 1",
            now=now,
        ).id
        case_id = case.id
        rep = representative_by_code(session, "neustart-wien-1")
        assert case_id is not None and social is not None
        assert rep is not None and rep.id is not None
        rep_id = rep.id
    assert gate(case_id, social, Phase.consent) == [SCOPE, FAMILY]
    with session_scope() as session:
        for scope, decision in (
            (SCOPE, ConsentDecision.granted),
            (FAMILY, ConsentDecision.refused),
        ):
            record_consent(
                session,
                case_id=case_id,
                scope=scope,
                decision=decision,
                recorded_by_id=rep_id,
                expires_on=None,
                now=now,
            )
    assert gate(case_id, social, Phase.family_only) == [FAMILY]
    assert gate(case_id, social, Phase.decision) == []
