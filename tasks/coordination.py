"""Coordinator actions outside the case's own run: reschedule, hand-over, consent withdrawal."""

from prefect import task
from sqlmodel import Session

from models.config.profile import load_profile
from models.config.settings import get_settings
from models.errors import Refusal
from models.record.audit import audit
from models.record.database import saved_id, session_scope
from models.record.tables import Case, Conference
from models.rules import cases, conference, consent, venues
from models.rules.invitations import queue_invitations, record_handover
from models.steps.parameters import ConsentWithdrawal, Handover, Reschedule
from models.vocabulary import CaseStatus, ConferenceType, Role
from tasks.policies import DATABASE_RETRIES, now


def _open_case_and_conference(session: Session, reference: str) -> tuple[Case, Conference]:
    case = cases.case_by_reference(session, reference)
    if case.status != CaseStatus.open:
        raise Refusal.of("case_reference", "this case is closed")
    row = cases.current_conference(session, case=case)
    if row is None:
        raise Refusal.of("case_reference", "this case has no conference prepared yet")
    return case, row


@task(persist_result=False, **DATABASE_RETRIES)
def reschedule(change: Reschedule) -> int:
    """Move the conference and queue the updated invitations; returns the case id."""
    starts_at = conference.aware_start(change.starts_at, change.time_zone)
    with session_scope() as session:
        at = now()
        rep = cases.acting_representative(session, code=change.acting_representative)
        case, row = _open_case_and_conference(session, change.case_reference)
        conference.reschedule_conference(
            session,
            conference=row,
            starts_at=starts_at,
            time_zone=change.time_zone,
            location=venues.place(
                session, change.location, free_text=get_settings().free_text_place
            )
            if change.location
            else None,
            now=at,
        )
        queue_invitations(session, case=case, conference=row, now=at, event="rescheduled")
        audit(session, action="conference.rescheduled", case_id=case.id, actor_id=rep.id, at=at)
        return saved_id(case)


@task(persist_result=False, **DATABASE_RETRIES)
def handover(record: Handover) -> int:
    with session_scope() as session:
        at = now()
        rep = cases.acting_representative(session, code=record.acting_representative)
        case, row = _open_case_and_conference(session, record.case_reference)
        record_handover(
            session,
            case=case,
            conference=row,
            role=Role(record.handed_to),
            actor_id=saved_id(rep),
            now=at,
            relation=str(record.relation) if record.relation else None,
        )
        return saved_id(case)


@task(persist_result=False, **DATABASE_RETRIES)
def withdraw_consent(withdrawal: ConsentWithdrawal) -> tuple[int, bool]:
    """Record the withdrawal (a new ledger entry) and tell the professionals, without a reason.

    Returns the case id and whether a conference that needs consent is under way (its track
    must stop now).
    """
    with session_scope() as session:
        at = now()
        rep = cases.acting_representative(session, code=withdrawal.acting_representative)
        case = cases.case_by_reference(session, withdrawal.case_reference)
        assert case.id is not None and rep.id is not None
        consent.withdraw(session, case_id=case.id, recorded_by_id=rep.id, now=at)
        row = cases.current_conference(session, case=case)
        under_way = row is not None and row.released_at is None and case.status == CaseStatus.open
        if row is not None and under_way:
            queue_invitations(session, case=case, conference=row, now=at, event="consent_withdrawn")
            rules = load_profile(case.profile).conference_types.get(
                ConferenceType(row.conference_type)
            )
            return case.id, rules is not None and rules.consent_required
        return case.id, False
