"""Delivering messages from a flow, and `notifications-sweep`: follow-ups on time, run or no run."""

from datetime import datetime

from prefect import flow
from prefect.futures import wait

from tasks.notifications import delivering, pending_messages, queue_follow_ups, report_failures
from tasks.reviews import reconcile


def deliver_messages(case_id: int | None, reference: str | None) -> int:
    """Send what the outbox holds (for one case, or all), concurrently; report what failed.

    A message that fails after its retries is recorded and shown; the case goes on.
    """
    ids = pending_messages(case_id)
    if ids:
        wait(delivering().map(ids))  # type: ignore[attr-defined]
    return report_failures(case_id, reference)


@flow(name="notifications-sweep", persist_result=True)
def notifications_sweep(at: datetime | None = None) -> int:
    """Bring the record in line with runs cancelled outside caseconf, queue reminders, due and
    overdue notices and review notices due at `at` (default now), then deliver everything still
    queued. Served on an interval, so nothing waits for a case run."""
    reconcile()
    queue_follow_ups(at)
    return deliver_messages(None, None)
