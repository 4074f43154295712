"""Reading and writing cases: referral, the pseudonymous reference, phase, closure."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from models.errors import Problem, Refusal
from models.record.audit import audit
from models.record.tables import Agency, Case, Conference, Representative, Review
from models.vocabulary import (
    CaseStatus,
    ClosureReason,
    ConferenceType,
    Need,
    Phase,
    ReviewStatus,
    Stage,
    phase_named,
)

#: What `issue_reference` issues (prefix, year, number): the forms accept only this shape.
REFERENCE_PATTERN = r"^[A-Z]{2,10}-\d{4}-\d{4,}$"


@dataclass(frozen=True)
class CaseView:
    """What a flow may know of a case: ids and vocabulary, never content."""

    id: int
    reference: str
    stage: Stage
    status: CaseStatus
    phase: str  # a Phase, or an installation's own phase
    cycle: int
    profile: str
    conference_type: ConferenceType | None


def view(case: Case) -> CaseView:
    assert case.id is not None
    return CaseView(
        id=case.id,
        reference=case.reference,
        stage=Stage(case.stage),
        status=CaseStatus(case.status),
        phase=phase_named(case.phase),
        cycle=case.cycle,
        profile=case.profile,
        conference_type=ConferenceType(case.conference_type) if case.conference_type else None,
    )


def agency_by_code(session: Session, code: str) -> Agency | None:
    return session.exec(select(Agency).where(Agency.code == code)).first()


def representative_by_code(session: Session, code: str) -> Representative | None:
    return session.exec(select(Representative).where(Representative.code == code)).first()


def acting_representative(
    session: Session, *, code: str, field: str = "acting_representative"
) -> Representative:
    """The representative named on a form, checked against the directory."""
    rep = representative_by_code(session, code)
    if rep is None or not rep.active:
        raise Refusal.of(field, "not an active representative in the agency directory")
    return rep


def case_by_reference(session: Session, reference: str) -> Case:
    case = session.exec(select(Case).where(Case.reference == reference)).first()
    if case is None:
        raise Refusal.of("case_reference", "no case with this reference exists")
    return case


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise LookupError(f"case id {case_id} does not exist")
    return case


def issue_reference(session: Session, *, prefix: str, now: datetime) -> str:
    """The next pseudonymous reference of the year, e.g. CASE-2026-0042."""
    stem = f"{prefix}-{now.year:04d}-"
    references = session.exec(
        select(Case.reference).where(col(Case.reference).startswith(stem))
    ).all()
    numbers = [
        int(ref.removeprefix(stem)) for ref in references if ref.removeprefix(stem).isdigit()
    ]
    return f"{stem}{max(numbers, default=0) + 1:04d}"


def open_case_for(session: Session, *, agency_id: int, file_number: str) -> Case | None:
    return session.exec(
        select(Case).where(
            Case.referring_agency_id == agency_id,
            Case.referral_file_number == file_number,
            Case.status == CaseStatus.open,
        )
    ).first()


def refer_case(
    session: Session,
    *,
    referring_agency: str,
    file_number: str,
    stage: Stage,
    needs: list[Need],
    profile: str,
    acting_representative_code: str,
    reference_prefix: str,
    flow_run_id: str | None,
    now: datetime,
) -> Case:
    """Open a case and issue its reference; refused if this agency's file number has an open case."""
    problems: list[Problem] = []
    agency = agency_by_code(session, referring_agency)
    if agency is None or not agency.active:
        problems.append(Problem("referring_agency", "not an active agency in the directory"))
    rep = representative_by_code(session, acting_representative_code)
    if rep is None or not rep.active:
        problems.append(
            Problem("acting_representative", "not an active representative in the agency directory")
        )
    if stage == Stage.closed:
        problems.append(Problem("stage", "a case cannot be referred as closed"))
    if problems:
        raise Refusal(*problems)
    assert agency is not None and agency.id is not None and rep is not None
    existing = open_case_for(session, agency_id=agency.id, file_number=file_number)
    if existing is not None:
        raise Refusal.of(
            "file_number",
            f"this agency's file number already has an open case, {existing.reference}; "
            "continue that case instead of referring the person again",
        )
    case = Case(
        reference=issue_reference(session, prefix=reference_prefix, now=now),
        referring_agency_id=agency.id,
        referral_file_number=file_number,
        profile=profile,
        stage=stage,
        needs=sorted(str(n) for n in needs),
        phase=Phase.preparation,
        current_flow_run_id=flow_run_id,
        created_at=now,
        updated_at=now,
    )
    session.add(case)
    session.flush()
    audit(session, action="case.referred", case_id=case.id, actor_id=rep.id, at=now)
    return case


def set_phase(session: Session, *, case: Case, phase: str, now: datetime) -> None:
    case.phase = phase
    case.updated_at = now
    session.add(case)
    session.flush()


def current_conference(session: Session, *, case: Case) -> Conference | None:
    return session.exec(
        select(Conference).where(Conference.case_id == case.id, Conference.cycle == case.cycle)
    ).first()


def close_case(
    session: Session,
    *,
    case: Case,
    reason: ClosureReason,
    actor_id: int | None,
    note: str | None,
    now: datetime,
) -> list[Review]:
    """Close a case from any stage with a reason; returns the scheduled reviews to cancel."""
    if case.status == CaseStatus.closed:
        raise Refusal.of("case_reference", f"case {case.reference} is already closed")
    case.status = CaseStatus.closed
    case.phase = Phase.closed
    case.stage = Stage.closed
    case.closure_reason = str(reason)
    case.closed_at = now
    case.updated_at = now
    session.add(case)
    pending = list(
        session.exec(
            select(Review).where(Review.case_id == case.id, Review.status == ReviewStatus.scheduled)
        )
    )
    for review in pending:
        review.status = ReviewStatus.cancelled
        session.add(review)
    audit(
        session,
        action="case.closed",
        case_id=case.id,
        actor_id=actor_id,
        at=now,
        detail=str(reason),
        justification=note,
    )
    session.flush()
    return pending
