"""Coordinator actions a person starts from the UI at any moment, beside the case's own run."""

from prefect import flow

from flows.forms import ConsentWithdrawal, Handover, Reschedule
from flows.notifications import deliver_messages
from tasks.coordination import handover, reschedule, withdraw_consent


@flow(name="case-conference", persist_result=True)
def reschedule_conference(change: Reschedule) -> str:
    """Move a case's upcoming conference: every participant gets the updated invitation."""
    case_id = reschedule(change)
    deliver_messages(case_id, change.case_reference)
    return "rescheduled"


@flow(name="case-handover", persist_result=True)
def record_handover(record: Handover) -> str:
    """Record that the intermediary handed the invitation to the client or the family."""
    handover(record)
    return "handed over"


@flow(name="case-consent", persist_result=True)
def withdraw_consent_flow(withdrawal: ConsentWithdrawal) -> str:
    """Record a withdrawal of the client's consent; the social-network track stops at its next
    step, and the professionals are told without a reason."""
    case_id = withdraw_consent(withdrawal)
    deliver_messages(case_id, withdrawal.case_reference)
    return "withdrawn"
