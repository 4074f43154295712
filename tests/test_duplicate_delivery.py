"""A duplicate delivery is harmless: a row sent again is recognisably the same message.

Delivery is at least once. If the process dies after the SMTP server accepted a message but
before the outbox row was marked sent, the row is still queued and goes out again. The copy
carries the same Message-ID (derived from the outbox key) and the same calendar UID and
SEQUENCE, so the recipient's mail and calendar treat it as the message they already have.
"""

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from deployments.mailcatcher import ChatCatcher, MailCatcher
from models.messaging.channels import Transport
from models.messaging.mail_plugin import build_message, message_digest, message_id_for
from models.messaging.sending import send_one
from models.record.database import session_scope
from models.record.tables import Case, Notification
from models.rules.cases import close_case, refer_case
from models.rules.conference import open_conference
from models.rules.invitations import queue_invitations
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
from tests.prefect_harness import calendar_parts

pytestmark = pytest.mark.database

NOW = datetime(2034, 1, 15, 8, 0, tzinfo=UTC)
MAIL_FROM = "caseconf@demo.invalid"


@pytest.fixture
def invited(database: str, mail: MailCatcher) -> Iterator[tuple[str, int, Transport]]:
    """A committed security case whose invitations are queued; closed afterwards."""
    with session_scope() as session:
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number=f"DUP-{uuid.uuid4().hex[:12]}",
            stage=Stage.custody,
            needs=[Need.housing],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="DUP",
            flow_run_id=None,
            now=NOW,
        )
        conference = open_conference(
            session,
            case=case,
            kind=ConferenceKind.first,
            conference_type=ConferenceType.security,
            starts_at=datetime(2034, 1, 29, 10, 0, tzinfo=ZoneInfo("Europe/Vienna")),
            time_zone="Europe/Vienna",
            location="Room 1",
            now=NOW,
        )
        record_participants(
            session,
            conference=conference,
            proposals=[
                Proposal("dsn", Role.lead, "test: lead"),
                Proposal("jva-wien", Role.core, "test: core"),
                Proposal("neustart-wien", Role.core, "test: core with a chat channel"),
            ],
            client_and_family=False,
            family_involved=False,
            intermediary_code=None,
        )
        queue_invitations(session, case=case, conference=conference, now=NOW)
        reference, case_id = case.reference, case.id
    assert case_id is not None
    yield reference, case_id, Transport(os.environ["CASECONF_APPRISE_CONFIG"])
    with session_scope() as session:
        case = session.get(Case, case_id)
        assert case is not None
        close_case(
            session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=NOW
        )


def send(row_id: int, transport: Transport) -> NotificationStatus:
    return send_one(
        row_id, transport=transport, mail_from=MAIL_FROM, duration=timedelta(minutes=90), now=NOW
    )


def lose_outbox_update(row_id: int) -> None:
    """What a crash after the channel took the message leaves: the row still queued."""
    with session_scope() as session:
        lost = session.get(Notification, row_id)
        assert lost is not None
        lost.status, lost.sent_at = NotificationStatus.queued, None
        session.add(lost)


def received(mail: MailCatcher, reference: str, since: int) -> list[Message]:
    return [m for m in mail.messages()[since:] if reference in str(m["Subject"])]


def test_a_row_sent_again_after_a_crash_is_the_same_message(
    mail: MailCatcher, invited: tuple[str, int, Transport]
) -> None:
    reference, case_id, transport = invited
    since = len(mail.messages())
    with session_scope() as session:
        row = session.exec(
            select(Notification)
            .where(Notification.case_id == case_id, Notification.channel == "jva-wien")
            .order_by(col(Notification.id))
        ).one()
        row_id, key = row.id, row.key
    assert row_id is not None

    assert send(row_id, transport) == NotificationStatus.sent
    # The crash: the SMTP server accepted the message, the outbox update was lost.
    lose_outbox_update(row_id)
    assert send(row_id, transport) == NotificationStatus.sent
    # Marked sent now: nothing goes out a third time.
    assert send(row_id, transport) == NotificationStatus.sent

    first, again = received(mail, reference, since)
    assert first["Message-ID"] == again["Message-ID"] == message_id_for(key, sender=MAIL_FROM)
    assert reference not in first["Message-ID"]  # a hash of the key, not the key
    [(method, calendar)] = calendar_parts(first)
    [(method_again, calendar_again)] = calendar_parts(again)
    event, event_again = calendar.walk("VEVENT")[0], calendar_again.walk("VEVENT")[0]
    assert method == method_again == "REQUEST"
    assert (str(event["UID"]), int(event["SEQUENCE"])) == (
        str(event_again["UID"]),
        int(event_again["SEQUENCE"]),
    )


def test_a_chat_message_sent_again_carries_the_same_idempotency_key(
    mail: MailCatcher, invited: tuple[str, int, Transport]
) -> None:
    reference, case_id, transport = invited
    chat = ChatCatcher("127.0.0.1", mail.chat_port).start()  # type: ignore[attr-defined]
    try:
        with session_scope() as session:
            row = session.exec(
                select(Notification)
                .where(
                    Notification.case_id == case_id,
                    Notification.channel == "neustart-wien-chat",
                )
                .order_by(col(Notification.id))
            ).first()
            assert row is not None and row.id is not None, "no chat message queued"
            row_id, key = row.id, row.key

        assert send(row_id, transport) == NotificationStatus.sent
        lose_outbox_update(row_id)  # the crash: the webhook took the post, the update was lost
        assert send(row_id, transport) == NotificationStatus.sent
        posted = [
            (k, body)
            for k, body in zip(chat.keys, chat.received, strict=True)
            if reference.encode() in body
        ]
    finally:
        chat.stop()
    (first_key, first), (again_key, again) = posted
    assert first == again
    assert first_key == again_key == message_digest(key)
    assert reference not in first_key  # a hash of the key, not the key


def test_each_outbox_row_has_its_own_message_id(
    mail: MailCatcher, invited: tuple[str, int, Transport]
) -> None:
    reference, case_id, transport = invited
    since = len(mail.messages())
    with session_scope() as session:
        rows = session.exec(
            select(Notification).where(
                Notification.case_id == case_id, ~col(Notification.channel).endswith("-chat")
            )
        ).all()
        ids = [(r.id, r.key) for r in rows]
    assert len(ids) >= 2
    for row_id, _ in ids:
        assert row_id is not None
        send_one(
            row_id,
            transport=transport,
            mail_from=MAIL_FROM,
            duration=timedelta(minutes=90),
            now=NOW,
        )
    got = sorted(str(m["Message-ID"]) for m in received(mail, reference, since))
    assert got == sorted(message_id_for(key, sender=MAIL_FROM) for _, key in ids)
    assert len(set(got)) == len(got)


def test_a_message_built_outside_the_outbox_gets_a_fresh_id() -> None:
    def built() -> str:
        return str(
            build_message(sender=MAIL_FROM, recipients=["a@demo.invalid"], subject="s", body="b")[
                "Message-ID"
            ]
        )

    assert built() != built()
    assert message_id_for("CASE-2034-0001/c1/invitation/7/jva-wien", sender=MAIL_FROM).endswith(
        "@demo.invalid>"
    )
