"""The `caseconfmail://` Apprise schema: e-mail with RFC 6047 (iMIP) calendar parts.

URL form::

    caseconfmail://[user:password@]host[:port]/?from=sender@example.org
        &to=a@x.org,b@y.org&mode=starttls|ssl|plain&name=caseconf

Apprise 2.0.1 only accepts schemas matching ``[a-z0-9]{1,32}``, so the schema has no
hyphen (``caseconf-mail`` is rejected by ``apprise.decorators.notify``).

The schema exists once :func:`register` has run (``models.messaging.channels`` runs it before it
reads a config). Apprise looks a URL's schema up in its process-wide plugin registry when a
configuration is parsed, so register before building any ``AppriseConfig``. Apprise itself is
imported only then: a flow run that sends nothing never loads it.

Within :func:`reusing` (a batch), one SMTP connection per server is kept open across sends
and closed at the batch's end; a kept connection that fails is reopened once.
"""

import hashlib
import logging
import re
import smtplib
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any

SCHEMA = "caseconfmail"
SERVICE_NAME = "caseconf e-mail with calendar parts"
TIMEOUT_SECONDS = 10.0
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "ssl": 465}

log = logging.getLogger("caseconf.mail")

_METHOD_RE = re.compile(r"^METHOD:([A-Za-z-]+)\s*$", re.MULTILINE)
_ADDRESS_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+$")


class MailError(Exception):
    """A message that cannot be built or sent; the text carries no credentials."""


def calendar_method(calendar: str) -> str:
    """The iTIP method of a calendar (its top-level METHOD line), upper-cased."""
    unfolded = re.sub(r"\r?\n[ \t]", "", calendar)
    match = _METHOD_RE.search(unfolded)
    if match is None:
        raise MailError("the calendar attachment has no METHOD line (RFC 5546 needs one)")
    return match.group(1).upper()


#: The one attachment name sent as the message's iMIP part (a meeting request or cancellation
#: for the recipient's own calendar). Any other .ics travels as a plain file: a hand-over
#: carries the invitation of someone else, which must not land in the intermediary's calendar.
IMIP_NAME = "invitation.ics"


def _is_calendar(name: str, mimetype: str) -> bool:
    return name == IMIP_NAME


#: The outbox key of the message being sent in this context. Apprise hands a plugin only body,
#: title and attachments; it copies the caller's context into its worker threads, so the
#: outbox sets the key around the send and the plugin reads it here.
_OUTBOX_KEY: ContextVar[str | None] = ContextVar("caseconf_outbox_key", default=None)


@contextmanager
def sending(outbox_key: str) -> Iterator[None]:
    """Send within this block as the outbox row `outbox_key` (its stable Message-ID)."""
    token = _OUTBOX_KEY.set(outbox_key)
    try:
        yield
    finally:
        _OUTBOX_KEY.reset(token)


def sending_key() -> str | None:
    """The outbox key of the message being sent in this context, if any."""
    return _OUTBOX_KEY.get()


def message_digest(outbox_key: str) -> str:
    """A message's identity on every channel, the same on every send: a hash, so the key's parts
    (reference, event, recipient) stay out of headers."""
    return hashlib.sha256(outbox_key.encode()).hexdigest()[:32]


def message_id_for(outbox_key: str, *, sender: str) -> str:
    """The Message-ID of an outbox row, the same on every send (RFC 5322 section 3.6.4).

    Delivery is at least once: a crash between the SMTP server's acceptance and the outbox
    update sends the row again, and the recipient's mail system recognises the copy by it.
    """
    return (
        f"<{message_digest(outbox_key)}.caseconf@{sender.rpartition('@')[2] or 'caseconf.invalid'}>"
    )


def build_message(
    *,
    sender: str,
    recipients: list[str],
    subject: str,
    body: str,
    attachments: Iterable[tuple[str, str, bytes]] = (),
    from_name: str | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """Build the message: iMIP when a calendar is among (name, mimetype, data) attachments.
    Without `message_id` the message gets a fresh one."""
    calendar: bytes | None = None
    others: list[tuple[str, str, bytes]] = []
    for name, mimetype, data in attachments:
        if calendar is None and _is_calendar(name, mimetype):
            calendar = data
        else:
            others.append((name, mimetype, data))

    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr((from_name, sender)) if from_name else sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id or make_msgid(
        domain=sender.rpartition("@")[2] or "caseconf.invalid"
    )
    msg.set_content(body, charset="utf-8", cte="quoted-printable")

    if calendar is not None:
        text = calendar.decode("utf-8")
        method = calendar_method(text)
        # multipart/alternative: text/plain, then text/calendar (RFC 6047 section 2.4).
        msg.add_alternative(
            text,
            subtype="calendar",
            charset="utf-8",
            params={"method": method},
            cte="quoted-printable",
        )
        # Wrap the alternative part in multipart/mixed only when there is more to carry;
        # RFC 6047 allows both, and mixed is what most clients expect with attachments.
        msg.make_mixed()

    for name, mimetype, data in others:
        # Bytes as given (base64), so a file arrives exactly as it was attached.
        maintype, _, subtype = (mimetype or "application/octet-stream").partition("/")
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=name
        )
    return msg


def _split_addresses(value: str) -> list[str]:
    return [a.strip() for a in re.split(r"[,;\s]+", value) if a.strip()]


def _connect(host: str, port: int, mode: str) -> smtplib.SMTP:
    if mode == "ssl":
        return smtplib.SMTP_SSL(
            host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    smtp = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
    if mode == "starttls":
        smtp.starttls(context=ssl.create_default_context())
    return smtp


#: host, port, mode, user, and a digest of the password (a login is part of the connection).
_ServerKey = tuple[str, int, str, str | None, str]


class Connections:
    """SMTP connections kept open for one batch of sends, per server and login.

    A connection serves one send at a time: a send takes an idle one or opens its own, and
    gives it back when the server accepted the message. `close` ends them all (QUIT).
    """

    def __init__(self) -> None:
        self._idle: dict[_ServerKey, list[smtplib.SMTP]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def take(self, key: _ServerKey) -> smtplib.SMTP | None:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def give(self, key: _ServerKey, smtp: smtplib.SMTP) -> None:
        with self._lock:
            if not self._closed:
                self._idle.setdefault(key, []).append(smtp)
                return
        _quit(smtp)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for smtp in connections:
                _quit(smtp)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


#: The open batch's connections in this context (Apprise copies the context into its threads).
_CONNECTIONS: ContextVar[Connections | None] = ContextVar("caseconf_smtp", default=None)


@contextmanager
def reusing(connections: Connections | None) -> Iterator[None]:
    """Send within this block over `connections` (None: one connection per message)."""
    token = _CONNECTIONS.set(connections)
    try:
        yield
    finally:
        _CONNECTIONS.reset(token)


#: What a kept connection the server has since dropped raises: it is reopened once.
_STALE = (smtplib.SMTPServerDisconnected, ConnectionError)


def _deliver(
    meta: dict[str, Any], key: _ServerKey, message: EmailMessage, recipients: list[str]
) -> dict[str, tuple[int, bytes]]:
    host, port, mode, user, _ = key
    pool = _CONNECTIONS.get()
    if pool is not None and (kept := pool.take(key)) is not None:
        try:
            refused = kept.send_message(message, to_addrs=recipients)
        except _STALE:
            kept.close()  # dropped while idle: the message was not taken; open a new one
        except BaseException:
            kept.close()
            raise
        else:
            pool.give(key, kept)
            return refused
    smtp = _connect(host, port, mode)
    try:
        if user:
            smtp.login(user, meta.get("password") or "")
        refused = smtp.send_message(message, to_addrs=recipients)
    except BaseException:
        smtp.close()
        raise
    if pool is not None:
        pool.give(key, smtp)
    else:
        _quit(smtp)
    return refused


def send_mail(meta: dict[str, Any], message: EmailMessage, recipients: list[str]) -> None:
    """Deliver over SMTP as the URL's mode says; raise MailError without credentials."""
    qsd: dict[str, str] = meta.get("qsd") or {}
    host = meta.get("host") or ""
    mode = (qsd.get("mode") or "starttls").lower()
    if mode not in DEFAULT_PORTS:
        raise MailError(f"mode must be starttls, ssl or plain, not {mode!r}")
    port = int(meta.get("port") or DEFAULT_PORTS[mode])
    where = f"{host}:{port} ({mode})"
    try:
        user, password = meta.get("user") or None, meta.get("password") or ""
        login = hashlib.sha256(password.encode()).hexdigest() if user else ""
        refused = _deliver(meta, (host, port, mode, user, login), message, recipients)
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(f"SMTP login at {where} was refused (code {exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise MailError(
            f"SMTP server {where} refused every recipient: {sorted(exc.recipients)}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP server {where} answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP delivery to {where} failed: {type(exc).__name__}: {exc}") from None
    if refused:
        raise MailError(f"SMTP server {where} refused recipients: {sorted(refused)}")


def _read_attachments(attach: Any) -> list[tuple[str, str, bytes]]:
    out: list[tuple[str, str, bytes]] = []
    for item in attach or ():
        if not item:
            raise MailError(f"attachment {getattr(item, 'name', '?')!r} cannot be read")
        with item.open() as handle:
            data = handle.read()
        out.append((item.name or "attachment", item.mimetype or "", data))
    return out


def _send(
    body: str, title: str, notify_type: str, meta: dict[str, Any], *args: Any, **kwargs: Any
) -> bool:
    """Apprise entry point for `caseconfmail://` URLs."""
    qsd: dict[str, str] = meta.get("qsd") or {}
    try:
        sender = (qsd.get("from") or "").strip()
        recipients = _split_addresses(qsd.get("to") or "")
        if not _ADDRESS_RE.match(sender):
            raise MailError("the URL needs from=<sender address>")
        if not recipients or not all(_ADDRESS_RE.match(a) for a in recipients):
            raise MailError("the URL needs to=<address>[,<address>...]")
        outbox_key = _OUTBOX_KEY.get()
        message = build_message(
            sender=sender,
            recipients=recipients,
            subject=title or "",
            body=body or "",
            attachments=_read_attachments(kwargs.get("attach")),
            from_name=qsd.get("name") or None,
            message_id=message_id_for(outbox_key, sender=sender) if outbox_key else None,
        )
        send_mail(meta, message, recipients)
    except MailError as exc:
        log.warning("caseconf e-mail not sent: %s", exc)
        return False
    except Exception as exc:  # an unexpected bug must still not leak the URL
        log.warning("caseconf e-mail not sent: unexpected %s", type(exc).__name__)
        return False
    log.info("caseconf e-mail sent to %d recipient(s)", len(recipients))
    return True


class _ToAppriseCapture(logging.Handler):
    """Hands caseconf.mail records to Apprise's per-call log capture (not to other handlers).

    Apprise 2 collects each notify() call's log lines through handlers it attaches to the
    ``apprise`` logger for the duration of the call; they filter by context, so records
    from concurrent calls in other threads are not mixed in.
    """

    def emit(self, record: logging.LogRecord) -> None:
        for handler in logging.getLogger("apprise").handlers:
            if type(handler).__name__ == "_ServiceLogCapture" and record.levelno >= handler.level:
                handler.handle(record)


_bridge = _ToAppriseCapture(level=logging.WARNING)


def register() -> None:
    """Register the `caseconfmail` schema with Apprise; safe to call any number of times."""
    from apprise.decorators import notify
    from apprise.manager_plugins import NotificationManager

    if _bridge not in log.handlers:
        log.addHandler(_bridge)
    if SCHEMA in NotificationManager():
        return
    notify(on=SCHEMA, name=SERVICE_NAME)(_send)
    if SCHEMA not in NotificationManager():
        raise RuntimeError(f"apprise refused to register the {SCHEMA}:// schema")
    plugin = NotificationManager()[SCHEMA]
    parse = plugin.parse_url

    def parse_url(url: str) -> dict[str, Any] | None:
        # apprise 2.0.1: YAML config parsing of an @notify URL that has a query string
        # but no password raises KeyError('password') in post_process_parse_url_results.
        results = parse(url)
        if results:
            results.setdefault("user", None)
            results.setdefault("password", None)
        return results

    plugin.parse_url = staticmethod(parse_url)
