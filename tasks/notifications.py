"""Delivering the outbox: each message a task of its own, sent concurrently, retried with backoff."""

from datetime import datetime, timedelta

from prefect import Task, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import task_run

from models.config.settings import get_settings
from models.messaging import sending
from models.messaging.channels import DeliveryError, Transport
from models.record.database import session_scope
from models.rules.followup import queue_due_notices
from tasks.policies import CHECK, DATABASE_RETRIES, EFFECT, OUTSIDE_RETRIES, now


def pending_messages(case_id: int | None = None) -> list[int]:
    with session_scope() as session:
        return sending.pending(session, case_id=case_id)


@task(cache_policy=EFFECT, persist_result=True)
def deliver(notification_id: int) -> str:
    """Send one message. Retried by Prefect on failure; after the last retry it is marked failed."""
    settings = get_settings()
    try:
        status = sending.send_one(
            notification_id,
            transport=Transport.shared(settings.apprise_config),
            mail_from=settings.mail_from,
            duration=timedelta(minutes=settings.conference_minutes),
            now=now(),
        )
    except DeliveryError:
        if task_run.run_count <= settings.delivery_retries:
            raise
        sending.mark_failed(notification_id)
        return "failed"
    return str(status)


def delivering() -> Task[[int], str]:
    """`deliver` with the retries and backoff from the settings."""
    settings = get_settings()
    delays = [settings.delivery_retry_delay * 2**i for i in range(settings.delivery_retries)]
    return deliver.with_options(retries=settings.delivery_retries, retry_delay_seconds=delays or 0)


def failed_messages(case_id: int | None = None) -> list[sending.Failure]:
    """What could not be delivered (for one case, or all); a plain read, most often empty."""
    with session_scope() as session:
        return sending.failures(session, case_id=case_id)


@task(cache_policy=CHECK, persist_result=False, **OUTSIDE_RETRIES)
def report_failures(failed: list[sending.Failure], reference: str | None) -> int:
    """Show the coordinator what could not be delivered: a Prefect artifact and a warning."""
    rows = "\n".join(
        f"| {f.reference} | {f.event} | `{f.recipient}` | `{f.channel}` | {f.reason} |"
        for f in failed
    )
    create_markdown_artifact(
        key=f"delivery-failures-{(reference or 'all').lower()}",
        markdown=(
            "### Messages not delivered\n"
            "Re-send them with `python -m deployments resend` once the channel works again.\n\n"
            "| case | event | recipient | channel | reason |\n|---|---|---|---|---|\n" + rows
        ),
        description="caseconf: messages that could not be delivered",
    )
    get_run_logger().warning("%d message(s) could not be delivered; see the artifact.", len(failed))
    return len(failed)


@task(cache_policy=CHECK, persist_result=False, **DATABASE_RETRIES)
def queue_follow_ups(at: datetime | None = None) -> list[int]:
    """Queue the reminders and due notices that are due at `at` (each once, by its key)."""
    settings = get_settings()
    with session_scope() as session:
        return queue_due_notices(
            session,
            now=at or now(),
            reminder_lead=timedelta(hours=settings.reminder_hours),
            due_soon=timedelta(days=settings.due_soon_days),
        )
