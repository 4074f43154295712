"""SMTP refusing connections and a chat webhook answering 500 across a sweep, then recovering.

The sweep queues what is due (reminders, actions due soon) once per key; while the channels are
down every message fails and is recorded failed with a reason, a second sweep queues nothing
new; once they are back, the re-send delivers each message exactly once: one e-mail per row
(its Message-ID from the outbox key), one webhook call per chat row.
"""

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from deployments.mailcatcher import MailCatcher
from models.messaging.channels import Transport
from models.messaging.mail_plugin import message_id_for
from models.messaging.sending import requeue_failed, send_now
from models.record.database import session_scope
from models.record.tables import ActionItem, Agency, Case, Notification
from models.rules.cases import close_case, refer_case
from models.rules.conference import open_conference
from models.rules.followup import queue_due_notices
from models.rules.participants import record_participants
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    ClosureReason,
    ConferenceKind,
    ConferenceType,
    Need,
    NotificationStatus,
    Role,
    Stage,
)
from tests.prefect_harness import ROOT, free_port

pytestmark = pytest.mark.database

NOW = datetime(2034, 5, 10, 7, 0, tzinfo=UTC)
MAIL_FROM = "caseconf@demo.invalid"


class Webhook:
    """A chat receiver whose answer can be switched between 500 and 200."""

    def __init__(self) -> None:
        self.status = 500
        self.received: list[bytes] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hook.status == 200:
                    hook.received.append(body)
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def config(tmp: Path, name: str, smtp_port: int, chat_port: int) -> Path:
    demo = (ROOT / "config" / "apprise.demo.yaml").read_text()
    path = tmp / name
    path.write_text(
        demo.replace("127.0.0.1:2525", f"127.0.0.1:{smtp_port}").replace(
            "127.0.0.1:8765", f"127.0.0.1:{chat_port}"
        )
    )
    return path


@pytest.fixture
def due(database: str) -> Iterator[int]:
    """A committed case: a conference the day after tomorrow, an action due in three days."""
    with session_scope() as session:
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number=f"OUT-{uuid.uuid4().hex[:12]}",
            stage=Stage.custody,
            needs=[Need.housing],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="OUT",
            flow_run_id=None,
            now=NOW - timedelta(days=20),
        )
        conference = open_conference(
            session,
            case=case,
            kind=ConferenceKind.first,
            conference_type=ConferenceType.security,
            starts_at=datetime(2034, 5, 12, 9, 0, tzinfo=ZoneInfo("Europe/Vienna")),
            time_zone="Europe/Vienna",
            location="Room 1",
            now=NOW - timedelta(days=20),
        )
        record_participants(
            session,
            conference=conference,
            proposals=[
                Proposal("neustart-wien", Role.lead, "test: lead"),
                Proposal("jva-wien", Role.core, "test: core"),
            ],
            client_and_family=False,
            family_involved=False,
            intermediary_code=None,
        )
        owner = session.exec(select(Agency).where(Agency.code == "jva-wien")).one()
        session.add(
            ActionItem(
                case_id=case.id,  # type: ignore[arg-type]
                conference_id=conference.id,  # type: ignore[arg-type]
                owner_agency_id=owner.id,  # type: ignore[arg-type]
                description="Arrange a course",
                due_on=NOW.date() + timedelta(days=3),
                created_at=NOW - timedelta(days=20),
                updated_at=NOW - timedelta(days=20),
            )
        )
        case_id = case.id
    assert case_id is not None
    yield case_id
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None
        close_case(
            session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=NOW
        )


def sweep(case_id: int, now: datetime) -> list[int]:
    """The sweep's queueing, over every open case; this case's rows."""
    with session_scope() as session:
        ids = queue_due_notices(
            session, now=now, reminder_lead=timedelta(hours=48), due_soon=timedelta(days=7)
        )
        mine = session.exec(select(Notification.id).where(Notification.case_id == case_id)).all()
        return sorted(set(ids) & set(mine))  # type: ignore[arg-type]


def rows(case_id: int) -> dict[int, Notification]:
    with session_scope() as session:
        found = session.exec(select(Notification).where(Notification.case_id == case_id)).all()
        return {r.id: r for r in found if r.id is not None}


def test_channels_down_across_a_sweep_lose_nothing_and_send_each_message_once(
    due: int, mail: MailCatcher, tmp_path: Path
) -> None:
    webhook = Webhook()
    try:
        closed = free_port()  # nothing listens: SMTP connections are refused
        down = Transport(config(tmp_path, "down.yaml", closed, webhook.port))
        up = Transport(config(tmp_path, "up.yaml", mail.port, webhook.port))

        queued = sweep(due, NOW)
        events = {r.event for r in rows(due).values()}
        assert {"reminder", "action_due_soon"} <= events
        channels = {r.channel for r in rows(due).values()}
        assert "neustart-wien-chat" in channels and "jva-wien" in channels

        def deliver(transport: Transport, ids: list[int]) -> int:
            return send_now(
                ids, transport=transport, mail_from=MAIL_FROM, duration=timedelta(hours=1), now=NOW
            )

        assert deliver(down, queued) == 0
        failed = rows(due)
        assert {r.status for r in failed.values()} == {NotificationStatus.failed}
        assert all(r.attempts == 1 and r.last_error for r in failed.values())
        for row in failed.values():
            assert row.channel in (row.last_error or "")  # the reason names the channel
        sweep(due, NOW + timedelta(minutes=10))
        assert rows(due).keys() == failed.keys()  # queued once per key: nothing new
        assert webhook.received == []

        # The channels come back; the coordinator runs the re-send.
        webhook.status = 200
        since = len(mail.messages())
        with session_scope() as session:
            requeued = requeue_failed(session)
            others = set(requeued) - set(queued)
            for row_id in others:  # other tests' failures stay theirs
                other = session.get(Notification, row_id)
                assert other is not None
                other.status = NotificationStatus.failed
                session.add(other)
        assert set(queued) <= set(requeued)
        assert deliver(up, queued) == len(queued)
        assert deliver(up, queued) == len(queued)  # sent before: a replay sends nothing new

        sent = rows(due)
        assert {r.status for r in sent.values()} == {NotificationStatus.sent}
        email = [r for r in sent.values() if not r.channel.endswith("-chat")]
        chat = [r for r in sent.values() if r.channel.endswith("-chat")]
        arrived = [str(m["Message-ID"]) for m in mail.messages()[since:]]
        expected = [message_id_for(r.key, sender=MAIL_FROM) for r in email]
        assert sorted(m for m in arrived if m in expected) == sorted(expected)
        assert len(webhook.received) == len(chat)
    finally:
        webhook.stop()
