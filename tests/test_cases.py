"""Cases: referral and its pseudonymous reference, one open case per file number, closure."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models.errors import Refusal
from models.record.tables import AuditEvent, Case, Review
from models.rules.cases import case_by_reference, close_case, refer_case
from models.vocabulary import (
    CaseStatus,
    ClosureReason,
    Need,
    Phase,
    ReviewStatus,
    Stage,
)

pytestmark = pytest.mark.database

# A year no other test refers cases in, so the references are predictable.
NOW = datetime(2031, 3, 2, 9, 30, tzinfo=UTC)


def refer(session: Session, file_number: str = "F-1", **overrides: object) -> Case:
    arguments: dict[str, object] = {
        "referring_agency": "neustart-wien",
        "file_number": file_number,
        "stage": Stage.custody,
        "needs": [Need.mental_health],
        "profile": "generic",
        "acting_representative_code": "neustart-wien-1",
        "reference_prefix": "CASE",
        "flow_run_id": None,
        "now": NOW,
    }
    arguments.update(overrides)
    return refer_case(session, **arguments)  # type: ignore[arg-type]


def refusal_fields(caught: pytest.ExceptionInfo[Refusal]) -> set[str]:
    return {p.field for p in caught.value.problems}


def test_references_are_issued_in_sequence_per_year(session: Session) -> None:
    # A prefix of its own: the whole-case walks issue CASE- references in the year they run in,
    # which may be this one.
    seq = {"reference_prefix": "SEQ"}
    first = refer(session, "F-1", **seq)
    second = refer(session, "F-2", **seq)
    next_year = refer(session, "F-3", now=NOW.replace(year=2032), **seq)
    assert first.reference == "SEQ-2031-0001"
    assert second.reference == "SEQ-2031-0002"
    assert next_year.reference == "SEQ-2032-0001"


def test_referral_stores_needs_sorted_and_starts_in_preparation(session: Session) -> None:
    case = refer(session, needs=[Need.mentoring, Need.housing, Need.employment])
    stored = session.get(Case, case.id)
    assert stored is not None
    assert stored.needs == ["employment", "housing", "mentoring"]
    assert stored.phase == Phase.preparation
    assert stored.status == CaseStatus.open
    assert stored.stage == Stage.custody
    assert stored.referral_file_number == "F-1"
    trail = session.exec(select(AuditEvent).where(AuditEvent.case_id == case.id)).all()
    assert [e.action for e in trail] == ["case.referred"]


def test_second_open_case_for_the_same_file_number_is_refused(session: Session) -> None:
    existing = refer(session, "VR-77")
    with pytest.raises(Refusal) as caught:
        refer(session, "VR-77")
    assert refusal_fields(caught) == {"file_number"}
    assert existing.reference in str(caught.value)
    assert "VR-77" not in str(caught.value)
    count = session.exec(select(Case).where(Case.referral_file_number == "VR-77")).all()
    assert len(count) == 1


def test_same_file_number_from_another_agency_is_a_different_case(session: Session) -> None:
    refer(session, "VR-78")
    other = refer(
        session, "VR-78", referring_agency="jva-wien", acting_representative_code="jva-wien-1"
    )
    assert other.status == CaseStatus.open


def test_file_number_may_be_referred_again_once_its_case_is_closed(session: Session) -> None:
    first = refer(session, "VR-79")
    close_case(
        session, case=first, reason=ClosureReason.plan_completed, actor_id=None, note=None, now=NOW
    )
    again = refer(session, "VR-79", now=NOW + timedelta(days=1))
    assert again.id != first.id
    assert again.status == CaseStatus.open


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"referring_agency": "no-such-agency"}, "referring_agency"),
        ({"acting_representative_code": "nobody-1"}, "acting_representative"),
        ({"stage": Stage.closed}, "stage"),
    ],
)
def test_referral_refuses_unknown_directory_entries(
    session: Session, overrides: dict[str, object], field: str
) -> None:
    def cases() -> int:  # this test's file number only: other tests' cases may be committed
        return len(session.exec(select(Case).where(Case.referral_file_number == "F-9")).all())

    before = cases()
    with pytest.raises(Refusal) as caught:
        refer(session, "F-9", **overrides)
    assert refusal_fields(caught) == {field}
    for value in overrides.values():
        if isinstance(value, str) and value != "closed":
            assert value not in str(caught.value)
    assert cases() == before == 0


def test_unknown_agency_and_representative_are_both_named(session: Session) -> None:
    with pytest.raises(Refusal) as caught:
        refer(session, referring_agency="nope", acting_representative_code="nope-1")
    assert refusal_fields(caught) == {"referring_agency", "acting_representative"}


def _review(case: Case, version: int, status: ReviewStatus) -> Review:
    return Review(
        case_id=case.id,  # type: ignore[arg-type]
        cycle=1,
        due_at=NOW + timedelta(weeks=12),
        version=version,
        idempotency_key=f"{case.reference}/review/c1/v{version}",
        status=status,
    )


def test_close_case_closes_and_cancels_scheduled_reviews(session: Session) -> None:
    case = refer(session, "F-10")
    scheduled = _review(case, 1, ReviewStatus.scheduled)
    superseded = _review(case, 2, ReviewStatus.superseded)
    session.add_all([scheduled, superseded])
    session.flush()

    later = NOW + timedelta(days=3)
    cancelled = close_case(
        session,
        case=case,
        reason=ClosureReason.referral_withdrawn,
        actor_id=None,
        note="withdrawn by the court",
        now=later,
    )

    assert [r.id for r in cancelled] == [scheduled.id]
    session.expire_all()
    stored = session.get(Case, case.id)
    assert stored is not None
    assert stored.status == CaseStatus.closed
    assert stored.stage == Stage.closed
    assert stored.phase == Phase.closed
    assert stored.closure_reason == "referral_withdrawn"
    assert stored.closed_at == later
    reviews = {
        r.version: r.status for r in session.exec(select(Review).where(Review.case_id == case.id))
    }
    assert reviews == {1: ReviewStatus.cancelled, 2: ReviewStatus.superseded}
    actions = [
        e.action for e in session.exec(select(AuditEvent).where(AuditEvent.case_id == case.id))
    ]
    assert actions == ["case.referred", "case.closed"]


def test_closing_twice_is_refused(session: Session) -> None:
    case = refer(session, "F-11")
    close_case(session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=NOW)
    with pytest.raises(Refusal) as caught:
        close_case(
            session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=NOW
        )
    assert refusal_fields(caught) == {"case_reference"}


def test_case_by_reference_finds_the_case(session: Session) -> None:
    case = refer(session, "F-12")
    assert case_by_reference(session, case.reference).id == case.id


def test_case_by_reference_refuses_an_unknown_reference(session: Session) -> None:
    with pytest.raises(Refusal) as caught:
        case_by_reference(session, "CASE-1999-0001")
    assert refusal_fields(caught) == {"case_reference"}


def test_case_by_reference_refusal_does_not_repeat_the_value_typed(session: Session) -> None:
    typed = "Mustermann, Max"  # what a user might type into the reference field by mistake
    with pytest.raises(Refusal) as caught:
        case_by_reference(session, typed)
    assert typed not in str(caught.value)


def test_partial_unique_index_refuses_a_duplicate_open_case(session: Session) -> None:
    case = refer(session, "F-13")
    duplicate = Case(
        reference="CASE-2031-9999",
        referring_agency_id=case.referring_agency_id,
        referral_file_number="F-13",
        profile="generic",
        stage=Stage.custody,
        status=CaseStatus.open,
    )
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(duplicate)
        session.flush()


def test_partial_unique_index_allows_closed_duplicates(session: Session) -> None:
    case = refer(session, "F-14")
    for n in (1, 2):
        session.add(
            Case(
                reference=f"CASE-2031-990{n}",
                referring_agency_id=case.referring_agency_id,
                referral_file_number="F-14",
                profile="generic",
                stage=Stage.closed,
                status=CaseStatus.closed,
            )
        )
    session.flush()
    rows = session.exec(select(Case).where(Case.referral_file_number == "F-14")).all()
    assert len(rows) == 3
