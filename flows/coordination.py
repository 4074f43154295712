"""Coordinator actions a person starts from the UI at any moment, beside the case's own run."""

from prefect import flow

from flows.notifications import deliver_messages
from models.steps.parameters import ConsentWithdrawal, Handover, Reschedule
from tasks.coordination import handover, reschedule, withdraw_consent
from tasks.runs import restart_waiting_run


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
    """Record a withdrawal of the client's consent and stop the social-network track at once:
    a run waiting for a form is replaced by one that asks what follows. The professionals are
    told without a reason."""
    case_id, stop = withdraw_consent(withdrawal)
    if stop:
        restart_waiting_run(case_id, "consent withdrawn: the social-network track stops")
    deliver_messages(case_id, withdrawal.case_reference)
    return "withdrawn"
