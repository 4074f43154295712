"""From outbox rows to messages (compose), and sending them once through real channels."""

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlmodel import Session, col, delete, select

from deployments.mailcatcher import ChatCatcher, MailCatcher
from models.messaging.channels import DeliveryError, Outgoing, Transport
from models.messaging.delivery import compose
from models.messaging.sending import failures, mark_failed, pending, requeue_failed, send_one
from models.record.database import session_scope
from models.record.summaries import rebuild_summaries
from models.record.tables import (
    ActionItem,
    Agency,
    Case,
    Conference,
    InformationItem,
    Notification,
    Participant,
    Review,
)
from models.rules.cases import close_case, refer_case
from models.rules.conference import (
    InformationEntry,
    cancel_conference,
    open_conference,
    record_information,
)
from models.rules.followup import queue_due_notices
from models.rules.invitations import queue_invitations
from models.rules.participants import record_participants
from models.rules.release import release
from models.rules.stakeholders import Proposal
from models.vocabulary import (
    ClosureReason,
    ConferenceKind,
    ConferenceType,
    Need,
    NotificationStatus,
    Phase,
    Role,
    Stage,
)

pytestmark = pytest.mark.database

NOW = datetime(2034, 1, 15, 8, 0, tzinfo=UTC)
VIENNA = ZoneInfo("Europe/Vienna")
STARTS_AT = datetime(2034, 1, 29, 10, 0, tzinfo=VIENNA)
MAIL_FROM = "caseconf@demo.invalid"
DURATION = timedelta(minutes=90)

SECURITY = [
    Proposal("neustart-wien", Role.lead, "test: lead"),
    Proposal("jva-wien", Role.core, "test: core"),
    Proposal("dsn", Role.core, "test: core"),
]
SOCIAL = [
    Proposal("neustart-wien", Role.lead, "test: lead"),
    Proposal("jva-wien", Role.core, "test: core"),
    Proposal("caritas-migration", Role.core, "test: core"),
]
RESTRICTED_POINTER = "DSN file 12/a"
PROFESSIONAL_SUMMARY = "Calm on the ward, attends the workshop weekly"
SHARED_SUMMARY = "Has found a flat share from March"
CARITAS_SUMMARY = "Residence permit renewal is pending"
SUMMARIES = (PROFESSIONAL_SUMMARY, SHARED_SUMMARY, CARITAS_SUMMARY)


def make_case(session: Session, file_number: str, *, prefix: str = "DLV") -> Case:
    return refer_case(
        session,
        referring_agency="neustart-wien",
        file_number=file_number,
        stage=Stage.custody,
        needs=[Need.housing],
        profile="generic",
        acting_representative_code="neustart-wien-1",
        reference_prefix=prefix,
        flow_run_id=None,
        now=NOW,
    )


def make_conference(
    session: Session, case: Case, conference_type: ConferenceType = ConferenceType.security
) -> Conference:
    conference = open_conference(
        session,
        case=case,
        kind=ConferenceKind.first,
        conference_type=conference_type,
        starts_at=STARTS_AT,
        time_zone="Europe/Vienna",
        location="Room 1",
        now=NOW,
    )
    social = conference_type == ConferenceType.social_network
    record_participants(
        session,
        conference=conference,
        proposals=SOCIAL if social else SECURITY,
        client_and_family=social,
        family_involved=social,
        intermediary_code="neustart-wien" if social else None,
    )
    return conference


def agency(session: Session, code: str) -> Agency:
    return session.exec(select(Agency).where(Agency.code == code)).one()


def rows(session: Session, ids: list[int]) -> list[Notification]:
    return list(
        session.exec(
            select(Notification).where(col(Notification.id).in_(ids)).order_by(col(Notification.id))
        )
    )


def row_for(
    session: Session,
    ids: list[int],
    code: str,
    channel: str,
    role: Role | None = None,
    event: str | None = None,
) -> Notification:
    recipient = agency(session, code)
    [row] = [
        r
        for r in rows(session, ids)
        if r.recipient_agency_id == recipient.id
        and r.channel == channel
        and (role is None or r.recipient_role == role)
        and (event is None or r.event == event)
    ]
    return row


def build(session: Session, row: Notification) -> Outgoing:
    return compose(session, notification=row, mail_from=MAIL_FROM, duration=DURATION, now=NOW)


def attachment(outgoing: Outgoing, name: str = "minutes.txt") -> str | None:
    found = [data for n, data in outgoing.attachments if n == name]
    assert len(found) <= 1
    return found[0].decode() if found else None


@pytest.fixture
def invited(session: Session) -> tuple[Case, Conference, list[int]]:
    case = make_case(session, "NW-4711/34")
    conference = make_conference(session, case)
    return case, conference, queue_invitations(session, case=case, conference=conference, now=NOW)


# --- compose: invitations -------------------------------------------------------------------


def test_only_the_referring_agency_sees_its_file_number(
    session: Session, invited: tuple[Case, Conference, list[int]]
) -> None:
    case, _, ids = invited
    assert case.referral_file_number == "NW-4711/34"
    own = build(session, row_for(session, ids, "neustart-wien", "neustart-wien"))
    assert "NW-4711/34" in own.body
    # Not even to the agency itself on a channel cleared for `shared` only (its chat).
    chat = build(session, row_for(session, ids, "neustart-wien", "neustart-wien-chat"))
    assert "NW-4711/34" not in chat.body and case.reference in chat.body
    for code in ("jva-wien", "dsn"):
        other = build(session, row_for(session, ids, code, code))
        assert "NW-4711/34" not in other.body + other.subject
        assert case.reference in other.body


def test_email_invitation_carries_the_conference_calendar(
    session: Session, invited: tuple[Case, Conference, list[int]]
) -> None:
    case, conference, ids = invited
    outgoing = build(session, row_for(session, ids, "jva-wien", "jva-wien"))
    assert outgoing.tag == "jva-wien"
    assert outgoing.calendar is not None
    calendar = Calendar.from_ical(outgoing.calendar)
    assert calendar["METHOD"] == "REQUEST"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == conference.ical_uid
    assert event.decoded("SEQUENCE") == conference.ical_sequence == 0
    assert event["DTSTART"].params["TZID"] == "Europe/Vienna"
    start = event.decoded("DTSTART")
    assert start.replace(tzinfo=None) == datetime(2034, 1, 29, 10, 0)
    assert start == STARTS_AT
    assert event.decoded("DTEND") - start == DURATION
    assert case.reference in str(event["SUMMARY"])
    # German agency, German text; the time in the conference's zone
    assert outgoing.subject == f"Einladung: Fallkonferenz {case.reference}"
    assert "10:00 Uhr" in outgoing.body and "Kernmitglied" in outgoing.body


def test_chat_invitation_is_one_line_without_a_calendar(
    session: Session, invited: tuple[Case, Conference, list[int]]
) -> None:
    case, _, ids = invited
    outgoing = build(session, row_for(session, ids, "neustart-wien", "neustart-wien-chat"))
    assert outgoing.tag == "neustart-wien-chat"
    assert outgoing.calendar is None
    assert outgoing.attachments == ()
    assert outgoing.subject == ""
    assert "\n" not in outgoing.body and outgoing.body.strip() == outgoing.body
    assert outgoing.body.startswith(f"Einladung: Fallkonferenz {case.reference}")
    assert "federführende Stelle" in outgoing.body


def test_the_english_speaking_agency_gets_english(session: Session) -> None:
    case = make_case(session, "NW-EN-1")
    conference = make_conference(session, case, ConferenceType.social_network)
    ids = queue_invitations(session, case=case, conference=conference, now=NOW)
    english = build(session, row_for(session, ids, "caritas-migration", "caritas-migration"))
    german = build(session, row_for(session, ids, "jva-wien", "jva-wien"))
    assert english.subject.startswith("Invitation")
    assert "core member" in english.body and "10:00" in english.body
    assert "Einladung" not in english.subject + english.body
    assert german.subject.startswith("Einladung")
    assert english.calendar is not None and "METHOD:REQUEST" in english.calendar


def test_cancellation_calendar_is_a_cancel_with_the_next_sequence(
    session: Session, invited: tuple[Case, Conference, list[int]]
) -> None:
    case, conference, _ = invited
    assert cancel_conference(session, conference=conference, now=NOW)
    ids = queue_invitations(session, case=case, conference=conference, now=NOW, event="cancelled")
    assert {r.event for r in rows(session, ids)} == {"cancelled"}
    outgoing = build(session, row_for(session, ids, "dsn", "dsn"))
    assert outgoing.calendar is not None
    calendar = Calendar.from_ical(outgoing.calendar)
    assert calendar["METHOD"] == "CANCEL"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == conference.ical_uid
    assert event.decoded("SEQUENCE") == 1
    assert str(event["STATUS"]) == "CANCELLED"
    chat = build(session, row_for(session, ids, "neustart-wien", "neustart-wien-chat"))
    assert chat.calendar is None and "\n" not in chat.body


def test_handover_request_goes_to_the_intermediary(session: Session) -> None:
    case = make_case(session, "NW-HO-1")
    conference = make_conference(session, case, ConferenceType.social_network)
    ids = queue_invitations(session, case=case, conference=conference, now=NOW)
    handovers = [r for r in rows(session, ids) if r.event == "handover_request"]
    intermediary = agency(session, "neustart-wien")
    # client and family, each on both of the intermediary's channels
    assert sorted((str(r.recipient_role), r.channel) for r in handovers) == [
        ("client", "neustart-wien"),
        ("client", "neustart-wien-chat"),
        ("family", "neustart-wien"),
        ("family", "neustart-wien-chat"),
    ]
    assert {r.recipient_agency_id for r in handovers} == {intermediary.id}
    email = build(session, row_for(session, ids, "neustart-wien", "neustart-wien", Role.client))
    assert "vermittelnde Stelle" in email.body
    # Says for whom, and carries the meeting as a file to hand over: no meeting request into
    # the intermediary's own calendar.
    assert "Einladung für die Klientin bzw. den Klienten" in email.subject
    assert "Für: die Klientin bzw. den Klienten" in email.body
    assert email.calendar is None
    [(name, ics)] = email.attachments
    assert name == "invitation-client.ics"
    assert b"METHOD:PUBLISH" in ics and b"ATTENDEE" not in ics
    chat = build(session, row_for(session, ids, "neustart-wien", "neustart-wien-chat", Role.family))
    assert chat.body.startswith("Bitte übergeben Sie") and chat.calendar is None
    assert "an die Angehörigen" in chat.body
    assert "\n" not in chat.body


# --- compose: minutes -----------------------------------------------------------------------


def released(session: Session, conference_type: ConferenceType, file_number: str) -> list[int]:
    case = make_case(session, file_number)
    conference = make_conference(session, case, conference_type)
    entries = [
        InformationEntry(
            agency="jva-wien", classification="professional", summary=PROFESSIONAL_SUMMARY
        ),
        InformationEntry(agency="neustart-wien", classification="shared", summary=SHARED_SUMMARY),
    ]
    if conference_type == ConferenceType.security:
        entries.append(
            InformationEntry(agency="dsn", classification="restricted", pointer=RESTRICTED_POINTER)
        )
    else:
        entries.append(
            InformationEntry(
                agency="caritas-migration", classification="professional", summary=CARITAS_SUMMARY
            )
        )
    record_information(
        session, conference=conference, entries=entries, next_phase=Phase.decision, now=NOW
    )
    session.add(
        ActionItem(
            case_id=case.id,  # type: ignore[arg-type]
            conference_id=conference.id,  # type: ignore[arg-type]
            owner_agency_id=agency(session, "jva-wien").id,  # type: ignore[arg-type]
            description="Arrange a housing appointment",
            due_on=date(2034, 2, 15),
        )
    )
    session.flush()
    return release(session, case=case, conference=conference, now=NOW)


def test_security_minutes_attach_only_where_the_channel_is_cleared(session: Session) -> None:
    ids = released(session, ConferenceType.security, "NW-MIN-1")

    dsn = attachment(build(session, row_for(session, ids, "dsn", "dsn", event="minutes")))
    assert dsn is not None
    assert RESTRICTED_POINTER in dsn and PROFESSIONAL_SUMMARY in dsn and SHARED_SUMMARY in dsn
    assert "Arrange a housing appointment" in dsn

    for code in ("jva-wien", "neustart-wien"):  # professional clearance, professional channel
        text = attachment(build(session, row_for(session, ids, code, code, event="minutes")))
        assert text is not None
        assert PROFESSIONAL_SUMMARY in text and SHARED_SUMMARY in text
        assert RESTRICTED_POINTER not in text and "restricted" not in text

    chat = build(
        session, row_for(session, ids, "neustart-wien", "neustart-wien-chat", event="minutes")
    )
    assert chat.attachments == ()
    assert "Protokoll wird über diesen Kanal nicht versandt" in chat.body
    assert "\n" not in chat.body
    email = build(session, row_for(session, ids, "neustart-wien", "neustart-wien", event="minutes"))
    assert "nicht versandt" not in email.body
    assert "beigefügt" in email.body


def test_client_and_family_minutes_hold_shared_items_only(session: Session) -> None:
    ids = released(session, ConferenceType.social_network, "NW-MIN-2")
    for role in (Role.client, Role.family):
        text = attachment(
            build(session, row_for(session, ids, "neustart-wien", "neustart-wien", role))
        )
        assert text is not None
        assert SHARED_SUMMARY in text
        assert PROFESSIONAL_SUMMARY not in text and CARITAS_SUMMARY not in text
        chat = build(session, row_for(session, ids, "neustart-wien", "neustart-wien-chat", role))
        assert chat.attachments == ()
    caritas = build(
        session, row_for(session, ids, "caritas-migration", "caritas-migration", event="minutes")
    )
    # caritas-migration works in English; the directory clears it for shared items only, so its
    # professional channel carries the minutes without any professional summary (its own either)
    assert caritas.subject.startswith("Minutes")
    text = attachment(caritas)
    assert text is not None and SHARED_SUMMARY in text
    assert CARITAS_SUMMARY not in text and PROFESSIONAL_SUMMARY not in text


def test_no_information_summary_ever_appears_in_a_message(session: Session) -> None:
    ids = released(session, ConferenceType.security, "NW-LEAK-1")
    ids += released(session, ConferenceType.social_network, "NW-LEAK-2")
    # every other kind of message for those cases: invitations, reminders, due notices, reviews
    for case in session.exec(
        select(Case).where(col(Case.referral_file_number).startswith("NW-LEAK"))
    ):
        conference = session.exec(select(Conference).where(Conference.case_id == case.id)).one()
        conference.released_at = None
        for event in ("invitation", "reminder", "cancelled"):
            ids += queue_invitations(
                session, case=case, conference=conference, now=NOW, event=event
            )
        session.add(
            Review(
                case_id=case.id,  # type: ignore[arg-type]
                cycle=2,
                due_at=NOW + timedelta(days=40),
                idempotency_key=f"{case.reference}/review/c2/v1",
            )
        )
    session.flush()
    ids += queue_due_notices(
        session,
        now=datetime(2034, 2, 20, 8, 0, tzinfo=UTC),
        reminder_lead=timedelta(days=400),
        due_soon=timedelta(days=7),
    )
    composed = [build(session, r) for r in rows(session, ids) if r.case_id is not None]
    events = {r.event for r in rows(session, ids)}
    assert {
        "minutes",
        "action_assigned",
        "invitation",
        "handover_request",
        "reminder",
        "cancelled",
        "action_overdue",
        "action_escalation",
        "review_due",
    } <= events
    assert len(composed) > 40
    for outgoing in composed:
        for summary in SUMMARIES:
            assert summary not in outgoing.subject + outgoing.body
        assert RESTRICTED_POINTER not in outgoing.subject + outgoing.body


def test_review_due_names_the_review_date_not_the_past_conference(session: Session) -> None:
    case = make_case(session, "NW-REV-1")
    conference = make_conference(session, case)
    conference.released_at = NOW
    session.add(conference)
    due_at = datetime(2034, 4, 20, 10, 0, tzinfo=VIENNA)
    session.add(
        Review(
            case_id=case.id,  # type: ignore[arg-type]
            cycle=2,
            due_at=due_at,
            idempotency_key=f"{case.reference}/review/c2/v1",
        )
    )
    session.flush()
    now = datetime(2034, 4, 17, 8, 0, tzinfo=UTC)  # the conference of 29 January is long past
    ids = queue_due_notices(
        session, now=now, reminder_lead=timedelta(hours=48), due_soon=timedelta(days=7)
    )
    # The sweep covers every open case in the database; this test looks at its own review only.
    ids = [r.id for r in rows(session, ids) if r.case_id == case.id]
    row = row_for(session, ids, "neustart-wien", "neustart-wien", event="review_due")
    body = build(session, row).body
    assert "29. Januar 2034" not in body  # the previous conference's date
    assert "20. April 2034" in body


# --- send_one through the real channels -----------------------------------------------------


@pytest.fixture
def committed(mail: MailCatcher) -> Iterator[tuple[str, int, Transport]]:
    """A committed case with a security conference and its queued invitations; removed after."""
    file_number = f"DLV-{uuid.uuid4().hex[:12]}"
    with session_scope() as session:
        case = make_case(session, file_number, prefix="DLV")
        conference = make_conference(session, case)
        queue_invitations(session, case=case, conference=conference, now=NOW)
        reference, case_id = case.reference, case.id
    assert case_id is not None
    yield reference, case_id, Transport(os.environ["CASECONF_APPRISE_CONFIG"])
    with session_scope() as session:
        conferences = list(session.exec(select(Conference.id).where(Conference.case_id == case_id)))
        session.exec(delete(Notification).where(col(Notification.case_id) == case_id))  # type: ignore[call-overload]
        session.exec(delete(Participant).where(col(Participant.conference_id).in_(conferences)))  # type: ignore[call-overload]
        session.exec(
            delete(InformationItem).where(col(InformationItem.conference_id).in_(conferences))
        )  # type: ignore[call-overload]
        session.exec(delete(Conference).where(col(Conference.case_id) == case_id))  # type: ignore[call-overload]
        # Bulk deletes pass the ORM by: the portfolio's summaries are written afresh after them.
        rebuild_summaries(session)
        # The case and its audit events stay (the audit log is append-only); closing it keeps
        # sweeps over open cases from picking it up.
        case = session.get(Case, case_id)
        assert case is not None
        close_case(
            session, case=case, reason=ClosureReason.other, actor_id=None, note=None, now=NOW
        )


def queued(case_id: int, channel: str) -> Notification:
    with session_scope() as session:
        return session.exec(
            select(Notification).where(
                Notification.case_id == case_id, Notification.channel == channel
            )
        ).one()


def fresh(notification_id: int) -> Notification:
    with session_scope() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        return row


def mine(mail: MailCatcher, reference: str, since: int) -> list[str]:
    """Subjects of the messages for `reference` received after the first `since` ones."""
    return [str(m["Subject"]) for m in mail.messages()[since:] if reference in str(m["Subject"])]


def send(notification_id: int, transport: Transport) -> NotificationStatus:
    return send_one(
        notification_id, transport=transport, mail_from=MAIL_FROM, duration=DURATION, now=NOW
    )


def test_a_queued_message_is_sent_once(
    mail: MailCatcher, committed: tuple[str, int, Transport]
) -> None:
    reference, case_id, transport = committed
    since = len(mail.messages())
    row = queued(case_id, "jva-wien")
    assert row.id is not None
    with session_scope() as session:
        assert row.id in pending(session, case_id=case_id)
    assert send(row.id, transport) == NotificationStatus.sent
    assert mine(mail, reference, since) == [f"Einladung: Fallkonferenz {reference}"]
    # Only this case's: the serving process may deliver other tests' messages meanwhile.
    [message] = [m for m in mail.messages()[since:] if reference in str(m["Subject"])]
    assert message["X-RcptTo"] == "jva-wien@demo.invalid"
    parts = {p.get_content_type() for p in message.walk()}
    assert "text/calendar" in parts
    after = fresh(row.id)
    assert (after.status, after.attempts, after.sent_at, after.last_error) == (
        NotificationStatus.sent,
        1,
        NOW,
        None,
    )
    # a replay sends nothing and changes nothing
    assert send(row.id, transport) == NotificationStatus.sent
    assert len(mine(mail, reference, since)) == 1
    assert fresh(row.id).attempts == 1
    with session_scope() as session:
        assert row.id not in pending(session, case_id=case_id)


def test_a_failed_chat_message_is_recorded_then_resent_once(
    mail: MailCatcher, committed: tuple[str, int, Transport]
) -> None:
    reference, case_id, transport = committed
    since = len(mail.messages())
    row = queued(case_id, "neustart-wien-chat")
    assert row.id is not None

    with pytest.raises(DeliveryError) as caught:
        send(row.id, transport)
    reason = caught.value.reason
    after = fresh(row.id)
    assert after.status == NotificationStatus.queued
    assert after.attempts == 1
    assert after.last_error == reason[:500] and reason
    assert "neustart-wien-chat" in reason
    assert not re.search(r"://[^\s/]*@", reason)  # no user:password@ of any URL
    assert "password" not in reason.lower()

    mark_failed(row.id)
    assert fresh(row.id).status == NotificationStatus.failed
    with session_scope() as session:
        [failure] = failures(session, case_id=case_id)
        assert failure.reference == reference
        assert failure.event == "invitation"
        assert failure.recipient == "neustart-wien"
        assert failure.channel == "neustart-wien-chat"
        assert failure.reason == reason[:500]
        assert row.id not in pending(session, case_id=case_id)

    receiver = ChatCatcher("127.0.0.1", mail.chat_port).start()  # type: ignore[attr-defined]
    others: list[int] = []
    try:
        with session_scope() as session:
            requeued = requeue_failed(session)
        assert row.id in requeued
        others = [i for i in requeued if i != row.id]
        assert send(row.id, transport) == NotificationStatus.sent
        assert send(row.id, transport) == NotificationStatus.sent
        assert len(receiver.received) == 1
        assert reference.encode() in receiver.received[0]
        after = fresh(row.id)
        assert (after.status, after.attempts, after.last_error) == (
            NotificationStatus.sent,
            2,
            None,
        )
        with session_scope() as session:
            assert requeue_failed(session) == []
            assert failures(session, case_id=case_id) == []
    finally:
        receiver.stop()
        if others:  # failures other tests left behind stay failed
            with session_scope() as session:
                for other in rows(session, others):
                    other.status = NotificationStatus.failed
                    session.add(other)
    assert mine(mail, reference, since) == []  # the chat channel sends no email
