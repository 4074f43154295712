"""Delivering messages from a flow, and `notifications-sweep`: follow-ups on time, run or no run."""

from datetime import datetime

from prefect import flow
from prefect.futures import wait

from models.config.settings import get_settings
from models.messaging.channels import Transport
from tasks.housekeeping import reconcile
from tasks.notifications import (
    delivering,
    failed_messages,
    pending_messages,
    queue_follow_ups,
    report_failures,
)


def deliver_messages(case_id: int | None, reference: str | None) -> int:
    """Send what the outbox holds (for one case, or all), concurrently; report what failed.

    A message that fails after its retries is recorded and shown; the case goes on. Both
    reads are plain (a replay mostly finds nothing to send and nothing failed): only the sends
    and a failure's report are tasks.
    """
    ids = pending_messages(case_id)
    if ids:
        # One SMTP connection per server (and sending thread) for the whole batch.
        with Transport.shared(get_settings().apprise_config).batch():
            wait(delivering().map(ids))
    failed = failed_messages(case_id)
    return report_failures(failed, reference) if failed else 0


@flow(name="notifications-sweep", persist_result=True)
def notifications_sweep(at: datetime | None = None) -> int:
    """Bring the record in line with runs cancelled outside caseconf, queue reminders, due and
    overdue notices and review notices due at `at` (default now), then deliver everything still
    queued. Served on an interval, so nothing waits for a case run."""
    reconcile()
    queue_follow_ups(at)
    return deliver_messages(None, None)
