"""One invitation round (30 recipients, each with a small .ics) over loopback SMTP.

caseconf: ``Transport.send`` per recipient, 8 at a time (ThreadPoolExecutor), within one
``Transport.batch()`` (one SMTP connection per server and thread, closed at the batch's end),
as delivery will run. Baseline: plain ``smtplib``, the same 30 messages (built by the same
``build_message``) sent one after the other, one connection per message, the way a
simple sender without a pool would. Both go to the same MailCatcher on a free port.
After one warm-up round each, the two take turns REPEAT times; the medians are reported, and
the range of the per-turn ratios.
"""

import smtplib
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from deployments.mailcatcher import MailCatcher, free_port
from models.messaging.channels import Outgoing, Transport
from models.messaging.mail_plugin import build_message

RECIPIENTS = 30
WORKERS = 8
REPEAT = 5
SENDER = "caseconf@bench.invalid"

CALENDAR = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//caseconf//bench//EN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        "UID:CASE-2026-0001-c1@bench.invalid",
        "DTSTAMP:20260301T090000Z",
        "DTSTART:20260310T090000Z",
        "DTEND:20260310T110000Z",
        "SUMMARY:Case conference CASE-2026-0001",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)
SUBJECT = "Invitation: CASE-2026-0001, 10 March 2026"
BODY = "You are invited to the case conference CASE-2026-0001 (information phase)."


def _address(i: int) -> str:
    return f"agency-{i:02d}@bench.invalid"


def _write_config(folder: Path, port: int) -> Path:
    lines = ["version: 1", "urls:"]
    for i in range(RECIPIENTS):
        lines.append(
            f"  - caseconfmail://127.0.0.1:{port}/?from={SENDER}&to={_address(i)}&mode=plain:"
        )
        lines.append(f"      tag: agency-{i:02d}")
    path = folder / "apprise.bench.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _caseconf_round(transport: Transport) -> None:
    outgoing = [
        Outgoing(tag=f"agency-{i:02d}", subject=SUBJECT, body=BODY, calendar=CALENDAR)
        for i in range(RECIPIENTS)
    ]
    with transport.batch(), ThreadPoolExecutor(max_workers=WORKERS) as pool:
        list(pool.map(transport.send, outgoing))


def _smtplib_round(port: int) -> None:
    for i in range(RECIPIENTS):
        message = build_message(
            sender=SENDER,
            recipients=[_address(i)],
            subject=SUBJECT,
            body=BODY,
            attachments=[("invitation.ics", "text/calendar", CALENDAR.encode())],
        )
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.send_message(message)


def _seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _turns(caseconf: Callable[[], None], baseline: Callable[[], None]) -> list[tuple[float, float]]:
    caseconf(), baseline()  # warm-up, not counted
    return [(_seconds(caseconf), _seconds(baseline)) for _ in range(REPEAT)]


def main() -> None:
    """Measure and print both timings and the ratio caseconf/smtplib."""
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-") as tmp:
        folder = Path(tmp)
        port = free_port()
        with MailCatcher("127.0.0.1", port, folder / "mail") as catcher:
            transport = Transport(_write_config(folder, port))
            turns = _turns(lambda: _caseconf_round(transport), lambda: _smtplib_round(port))
            received = len(catcher.messages())
    caseconf = statistics.median(c for c, _ in turns)
    baseline = statistics.median(b for _, b in turns)
    ratios = [c / b for c, b in turns]
    expected = 2 * (REPEAT + 1) * RECIPIENTS
    if received != expected:
        raise SystemExit(f"bench invitations: {received} messages arrived, {expected} expected")
    print(
        f"invitations: {RECIPIENTS} messages with .ics over loopback SMTP, median of {REPEAT}\n"
        f"  caseconf Transport, {WORKERS} threads : {caseconf * 1000:8.1f} ms\n"
        f"  smtplib sequential, 1 conn/msg : {baseline * 1000:8.1f} ms  (baseline)\n"
        f"  ratio caseconf/smtplib         : {caseconf / baseline:8.2f}"
        f"  (per turn {min(ratios):.2f}-{max(ratios):.2f}; 1 = same, below 1 = caseconf faster)"
    )


if __name__ == "__main__":
    main()
