"""Transport layer over real loopback servers: aiosmtpd for e-mail, an HTTP receiver for chat."""

import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import apprise
import pytest

from deployments.mailcatcher import MailCatcher, free_port
from models.messaging import mail_plugin
from models.messaging.channels import (
    ChannelConfigError,
    DeliveryError,
    Outgoing,
    Transport,
    check_tags,
    load_apprise_config,
    sanitise,
)

CALENDAR = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//caseconf//test//EN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        "UID:CASE-2026-0042-c1@caseconf.invalid",
        "DTSTAMP:20260301T090000Z",
        "DTSTART:20260310T090000Z",
        "DTEND:20260310T110000Z",
        "SUMMARY:Case conference CASE-2026-0042",
        "ORGANIZER:mailto:caseconf@demo.invalid",
        "ATTENDEE;ROLE=REQ-PARTICIPANT:mailto:jva-wien@demo.invalid",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


def mail_url(port: int, to: str, *, login: str = "") -> str:
    return f"caseconfmail://{login}127.0.0.1:{port}/?from=caseconf@demo.invalid&to={to}&mode=plain"


def write_config(folder: Path, entries: list[tuple[str, str]]) -> Path:
    path = folder / "apprise.yaml"
    lines = ["version: 1", "urls:"]
    for url, tag in entries:
        lines += [f"  - {url}:", f"      tag: {tag}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher("127.0.0.1", free_port(), tmp_path / "mail") as running:
        yield running


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, object]]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.received.append((self.path, json.loads(self.rfile.read(length))))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def only(messages: list[EmailMessage]) -> EmailMessage:
    assert len(messages) == 1, [m["Subject"] for m in messages]
    return messages[0]


def test_invitation_carries_an_imip_calendar_part_and_the_other_attachment(
    tmp_path: Path, catcher: MailCatcher
) -> None:
    config = write_config(
        tmp_path,
        [
            (mail_url(catcher.port, "jva-wien@demo.invalid,desk@demo.invalid"), "jva-wien"),
            (mail_url(catcher.port, "dsn@demo.invalid"), "dsn"),
        ],
    )
    Transport(config).send(
        Outgoing(
            tag="jva-wien",
            subject="Invitation: CASE-2026-0042, 10 March 2026",
            body="You are invited as prison representative.",
            calendar=CALENDAR,
            attachments=(("minutes.txt", b"Minutes of CASE-2026-0042\n"),),
        )
    )

    message = only(catcher.messages())
    assert message["X-RcptTo"] == "jva-wien@demo.invalid, desk@demo.invalid"
    assert message["X-MailFrom"] == "caseconf@demo.invalid"
    assert message["Subject"] == "Invitation: CASE-2026-0042, 10 March 2026"
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    text, calendar = alternative.iter_parts()  # type: ignore[attr-defined]
    assert text.get_content_type() == "text/plain"
    assert text.get_content().strip() == "You are invited as prison representative."
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert "UID:CASE-2026-0042-c1@caseconf.invalid" in calendar.get_content()
    assert attachment.get_filename() == "minutes.txt"
    assert attachment.get_content() == "Minutes of CASE-2026-0042\n"


def test_calendar_method_is_read_from_the_calendar(tmp_path: Path, catcher: MailCatcher) -> None:
    config = write_config(tmp_path, [(mail_url(catcher.port, "dsn@demo.invalid"), "dsn")])
    cancel = CALENDAR.replace("METHOD:REQUEST", "METHOD:CANCEL")
    Transport(config).send(Outgoing(tag="dsn", subject="Cancelled", body="-", calendar=cancel))
    message = only(catcher.messages())
    calendar = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "CANCEL"


def test_plain_email_without_calendar(tmp_path: Path, catcher: MailCatcher) -> None:
    config = write_config(tmp_path, [(mail_url(catcher.port, "psd-wien@demo.invalid"), "psd-wien")])
    Transport(config).send(Outgoing(tag="psd-wien", subject="Reminder", body="Action A-3 is due."))
    message = only(catcher.messages())
    assert message.get_content_type() == "text/plain"
    assert message["To"] == "psd-wien@demo.invalid"
    assert message.get_content().strip() == "Action A-3 is due."
    saved = list((catcher.folder).glob("*.eml"))
    assert len(saved) == 1 and saved[0].name.endswith("-00001.eml")


def test_chat_message_reaches_a_json_webhook(
    tmp_path: Path, catcher: MailCatcher, chat_server: ThreadingHTTPServer
) -> None:
    port = chat_server.server_address[1]
    config = write_config(
        tmp_path,
        [
            (mail_url(catcher.port, "neustart-wien@demo.invalid"), "neustart-wien"),
            (f"json://127.0.0.1:{port}/chat", "neustart-wien-chat"),
        ],
    )
    Transport(config).send(
        Outgoing(tag="neustart-wien-chat", subject="CASE-2026-0042", body="Invitation sent.")
    )
    [(path, payload)] = chat_server.received  # type: ignore[attr-defined]
    assert path == "/chat"
    assert payload["title"] == "CASE-2026-0042"
    assert payload["message"] == "Invitation sent."
    assert catcher.messages() == []


def test_down_server_fails_without_the_password_then_the_same_send_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    url = mail_url(port, "lpd-wien@demo.invalid", login="caseconf:secretpw@")
    transport = Transport(write_config(tmp_path, [(url, "lpd-wien")]))
    outgoing = Outgoing(tag="lpd-wien", subject="Invitation", body="-", calendar=CALENDAR)

    with caplog.at_level(logging.INFO), pytest.raises(DeliveryError) as failed:
        transport.send(outgoing)
    assert "secretpw" not in failed.value.reason
    assert "ConnectionRefusedError" in failed.value.reason
    assert f"127.0.0.1:{port}" in failed.value.reason
    assert "secretpw" not in caplog.text
    assert any(r.name == "caseconf.mail" for r in caplog.records)

    with MailCatcher("127.0.0.1", port, tmp_path / "mail", login=("caseconf", "secretpw")) as up:
        transport.send(outgoing)
        assert only(up.messages())["X-RcptTo"] == "lpd-wien@demo.invalid"


def test_wrong_password_is_reported_without_it(tmp_path: Path) -> None:
    port = free_port()
    url = mail_url(port, "sta-wien@demo.invalid", login="caseconf:wrongpw@")
    transport = Transport(write_config(tmp_path, [(url, "sta-wien")]))
    catcher = MailCatcher("127.0.0.1", port, tmp_path / "mail", login=("caseconf", "secretpw"))
    with catcher, pytest.raises(DeliveryError) as failed:
        transport.send(Outgoing(tag="sta-wien", subject="x", body="y"))
    assert "login" in failed.value.reason and "wrongpw" not in failed.value.reason


def test_a_tag_no_url_carries_raises(tmp_path: Path, catcher: MailCatcher) -> None:
    config = write_config(tmp_path, [(mail_url(catcher.port, "dsn@demo.invalid"), "dsn")])
    with pytest.raises(DeliveryError, match="no channel URL is tagged 'jva-wien'"):
        Transport(config).send(Outgoing(tag="jva-wien", subject="x", body="y"))
    assert catcher.messages() == []


def test_sends_from_several_threads_reach_their_own_recipients(
    tmp_path: Path, catcher: MailCatcher
) -> None:
    codes = [f"agency-{i}" for i in range(12)]
    transport = Transport(
        write_config(tmp_path, [(mail_url(catcher.port, f"{c}@demo.invalid"), c) for c in codes])
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(
            pool.map(
                lambda c: transport.send(
                    Outgoing(tag=c, subject=f"for {c}", body="-", calendar=CALENDAR)
                ),
                codes,
            )
        )
    got = {m["Subject"]: m["X-RcptTo"] for m in catcher.messages()}
    assert got == {f"for {c}": f"{c}@demo.invalid" for c in codes}


def test_unparsable_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "apprise.yaml"
    path.write_text(
        "version: 1\nurls:\n  - caseconfmail://u:secretpw@h/?to=a@b.c: [\n", encoding="utf-8"
    )
    with pytest.raises(ChannelConfigError) as error:
        load_apprise_config(path)
    assert str(path) in str(error.value) and "line" in str(error.value)
    assert "secretpw" not in str(error.value)


def test_url_without_tag_names_the_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "apprise.yaml"
    path.write_text(
        "version: 1\nurls:\n"
        "  - json://127.0.0.1:1/chat:\n      tag: chat\n"
        "  - caseconfmail://u:secretpw@127.0.0.1:2525/?from=a@b.c&to=d@e.f&mode=plain\n",
        encoding="utf-8",
    )
    with pytest.raises(ChannelConfigError) as error:
        load_apprise_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}: urls[1] (line 5)") and "no tag" in message
    assert "secretpw" not in message


def test_unknown_schema_names_the_entry(tmp_path: Path) -> None:
    path = write_config(tmp_path, [("nosuchthing://u:secretpw@host/x", "x")])
    with pytest.raises(ChannelConfigError, match=r"urls\[0\].*unknown Apprise schema") as error:
        load_apprise_config(path)
    assert "secretpw" not in str(error.value)


def test_demo_config_covers_every_agency_and_the_chat_channel() -> None:
    import yaml

    root = Path(__file__).resolve().parent.parent / "config"
    codes = {
        a["code"] for a in yaml.safe_load((root / "directory.demo.yaml").read_text())["agencies"]
    }
    config = load_apprise_config(root / "apprise.demo.yaml")
    assert config.tags == codes | {"neustart-wien-chat"}
    check_tags(config.tags, codes)
    with pytest.raises(ChannelConfigError, match="missing-one, other-one"):
        check_tags(config.tags, codes | {"other-one", "missing-one"})


def test_register_is_idempotent() -> None:
    mail_plugin.register()
    mail_plugin.register()
    assert mail_plugin.SCHEMA in apprise.NotificationManager()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("caseconfmail://caseconf:secretpw@smtp.example.org:587/?to=a@b.c", "secretpw"),
        ("json://user:secretpw@hooks.example.org/chat", "secretpw"),
        ("https://hooks.example.org/x?token=abc123def&x=1", "abc123def"),
        ("mailtos://_?user=me@example.org&pass=secretpw&smtp=smtp.example.org", "secretpw"),
        (
            "tgram://123456789:AAFabcdefghijklmnopqrstuvwxyz012/42",
            "AAFabcdefghijklmnopqrstuvwxyz012",
        ),
        ("discord://1234567/abcDEFghiJKLmno9PQRstuVWXyz01234", "abcDEFghiJKLmno9PQRstuVWXyz01234"),
        ("login failed, password=secretpw", "secretpw"),
        ("Authorization: Bearer eyJhbGciOi.secret", "eyJhbGciOi"),
    ],
)
def test_sanitise_removes_credentials(text: str, secret: str) -> None:
    assert secret not in sanitise(text)


def test_sanitise_keeps_what_helps() -> None:
    text = "SMTP delivery to 127.0.0.1:2525 (plain) failed: ConnectionRefusedError"
    assert sanitise(text) == text
    assert sanitise("json://u:p@127.0.0.1:8765/chat") == "json://***@127.0.0.1:8765/chat"


class _Counting:
    """aiosmtpd handler: each message with the client port it came over, and the QUITs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[int, str]] = []  # (client port, recipient)
        self.quits = 0

    async def handle_DATA(self, server: object, session: Any, envelope: Any) -> str:
        with self.lock:
            self.received.append((session.peer[1], ",".join(envelope.rcpt_tos)))
        return "250 OK"

    async def handle_QUIT(self, server: object, session: Any, envelope: Any) -> str:
        with self.lock:
            self.quits += 1
        return "221 Bye"


@pytest.fixture
def counting() -> Iterator[tuple[_Counting, int]]:
    """A real SMTP server on loopback that tells the connections apart."""
    from aiosmtpd.controller import Controller

    handler, port = _Counting(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def _agencies(tmp_path: Path, port: int, count: int) -> tuple[Transport, list[str]]:
    codes = [f"agency-{i:02d}" for i in range(count)]
    config = write_config(tmp_path, [(mail_url(port, f"{c}@demo.invalid"), c) for c in codes])
    return Transport(config), codes


def test_a_batch_sends_over_one_connection_per_server_and_thread_then_quits(
    tmp_path: Path, counting: tuple[_Counting, int]
) -> None:
    handler, port = counting
    transport, codes = _agencies(tmp_path, port, 6)
    with transport.batch():
        for code in codes:
            transport.send(Outgoing(tag=code, subject="Invitation", body="-", calendar=CALENDAR))
        assert handler.quits == 0  # still open inside the batch
    assert [to for _, to in handler.received] == [f"{c}@demo.invalid" for c in codes]
    assert len({client for client, _ in handler.received}) == 1
    assert handler.quits == 1

    with transport.batch(), ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda c: transport.send(Outgoing(tag=c, subject="x", body="-")), codes * 4))
    later = handler.received[len(codes) :]
    assert sorted(to for _, to in later) == sorted(f"{c}@demo.invalid" for c in codes * 4)
    assert len({client for client, _ in later}) <= 3  # at most one per sending thread
    assert handler.quits == 1 + len({client for client, _ in later})


def test_without_a_batch_each_message_has_its_own_connection(
    tmp_path: Path, counting: tuple[_Counting, int]
) -> None:
    handler, port = counting
    transport, codes = _agencies(tmp_path, port, 3)
    for code in codes:
        transport.send(Outgoing(tag=code, subject="x", body="-"))
    assert len({client for client, _ in handler.received}) == 3
    assert handler.quits == 3


def test_a_connection_the_server_dropped_is_reopened_once_and_the_message_sent_once(
    tmp_path: Path,
) -> None:
    from aiosmtpd.controller import Controller

    port = free_port()
    transport, codes = _agencies(tmp_path, port, 2)
    first, second = _Counting(), _Counting()
    with transport.batch():
        server = Controller(first, hostname="127.0.0.1", port=port)
        server.start()
        transport.send(Outgoing(tag=codes[0], subject="x", body="-"))
        server.stop()  # a restart: the kept connection is gone
        server = Controller(second, hostname="127.0.0.1", port=port)
        server.start()
        try:
            transport.send(Outgoing(tag=codes[1], subject="y", body="-"))
        finally:
            server.stop()
    assert [to for _, to in first.received] == [f"{codes[0]}@demo.invalid"]
    assert [to for _, to in second.received] == [f"{codes[1]}@demo.invalid"]


def test_a_batch_whose_server_stays_down_fails_each_message_without_the_password(
    tmp_path: Path, counting: tuple[_Counting, int]
) -> None:
    handler, port = counting
    down = free_port()
    urls = [
        (mail_url(port, "dsn@demo.invalid"), "dsn"),
        (mail_url(down, "sta-wien@demo.invalid", login="caseconf:secretpw@"), "sta-wien"),
    ]
    transport = Transport(write_config(tmp_path, urls))
    with transport.batch():
        transport.send(Outgoing(tag="dsn", subject="x", body="-"))
        with pytest.raises(DeliveryError) as failed:
            transport.send(Outgoing(tag="sta-wien", subject="x", body="-"))
        transport.send(Outgoing(tag="dsn", subject="y", body="-"))
    assert "secretpw" not in failed.value.reason and f"127.0.0.1:{down}" in failed.value.reason
    assert [to for _, to in handler.received] == ["dsn@demo.invalid"] * 2
    assert len({client for client, _ in handler.received}) == 1


def test_one_apprise_object_per_tag_and_a_shared_transport_per_config_file(
    tmp_path: Path, catcher: MailCatcher
) -> None:
    transport, codes = _agencies(tmp_path, catcher.port, 2)
    transport.send(Outgoing(tag=codes[0], subject="x", body="-"))
    built = transport._sender(codes[0])
    transport.send(Outgoing(tag=codes[0], subject="y", body="-"))
    assert transport._sender(codes[0]) is built
    assert transport._sender(codes[1]) is not built
    assert [m["X-RcptTo"] for m in catcher.messages()] == [f"{codes[0]}@demo.invalid"] * 2

    path = tmp_path / "apprise.yaml"
    assert Transport.shared(path) is Transport.shared(str(path))
    before = Transport.shared(path)
    write_config(tmp_path, [(mail_url(catcher.port, "dsn@demo.invalid"), "dsn-new-tag")])
    assert Transport.shared(path) is not before
    assert Transport.shared(path).tags == frozenset({"dsn-new-tag"})
