"""Delivery channels: the Apprise YAML config (URLs and secrets) and the transport over it.

The agency directory names each channel by its Apprise tag; the URLs, with their
secrets, live only in the Apprise config file, which this module validates and sends
through. Nothing that leaves this module (errors, reasons, logs) carries a URL's
credentials: see :func:`sanitise`.
"""

import functools
import logging
import mimetypes
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from models.messaging import mail_plugin

if TYPE_CHECKING:
    import apprise

log = logging.getLogger("caseconf.channels")

CALENDAR_NAME = mail_plugin.IMIP_NAME

# apprise 2.0.1 accepts an attachment's mimetype only if it is a value of
# mimetypes.types_map, which lacks text/calendar until the system's mime.types is read
# (and slim images have none). Register it, explicitly, once.
mimetypes.add_type("text/calendar", ".ics")

_URL_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,31})://([^\s'\"<>]*)")
_USERINFO_RE = re.compile(r"^[^\s/?#@]*@")
_SECRET_KEYS = (
    r"pass(?:word|wd)?|pwd|secret|token|access_token|api_?key|apikey|key|auth|"
    r"authorization|signature|sig|webhook|bot_?token|client_secret"
)
_SECRET_PARAM_RE = re.compile(rf"(?i)([?&;]|\b)({_SECRET_KEYS})=([^&\s'\"<>]*)")
_SECRET_ASSIGN_RE = re.compile(rf"(?i)\b({_SECRET_KEYS})(\s*[:=]\s*)([^\s&;,]+)")
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+")
_BOT_TOKEN_RE = re.compile(r"\b\d{6,}:[A-Za-z0-9_\-]{20,}\b")
_TOKEN_SEGMENT_RE = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:(?=[A-Za-z_\-]*\d)[A-Za-z0-9_\-]{20,}|[A-Za-z0-9_\-]{32,})(?![A-Za-z0-9_\-])"
)


def _sanitise_url(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    rest = _USERINFO_RE.sub("***@", rest)
    head, sep, query = rest.partition("?")
    head = _TOKEN_SEGMENT_RE.sub("***", head)
    if sep:
        query = re.sub(
            r"(?i)(^|[&;])([^=&;]*)=([^&;]*)",
            lambda m: (
                f"{m.group(1)}{m.group(2)}=***"
                if re.fullmatch(_SECRET_KEYS, m.group(2), re.IGNORECASE)
                else m.group(0)
            ),
            query,
        )
    return f"{scheme}://{head}{sep}{query}"


def sanitise(text: str) -> str:
    """Remove credentials from text: URL user:password@, secret query values, tokens."""
    text = _URL_RE.sub(_sanitise_url, text)
    text = _SECRET_PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}=***", text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} ***", text)
    text = _SECRET_ASSIGN_RE.sub(
        lambda m: m.group(0) if m.group(3) == "***" else f"{m.group(1)}{m.group(2)}***", text
    )
    return _BOT_TOKEN_RE.sub("***", text)


class ChannelConfigError(ValueError):
    """The Apprise config cannot be used; the message names the file and entry, no secret."""


class DeliveryError(Exception):
    """A message was not delivered; ``reason`` is sanitised and safe to store and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ChannelConfig:
    """A validated Apprise YAML config: its text and the tags its URLs carry."""

    path: Path
    content: str
    tags: frozenset[str]
    # Each `urls` entry as a one-URL Apprise YAML document, with the tags it carries.
    entries: tuple[tuple[frozenset[str], str], ...] = ()
    uses_groups: bool = False

    def content_for(self, tag: str) -> str:
        """Apprise YAML holding only the entries a tag can match (the whole file with groups)."""
        if self.uses_groups or not self.entries:
            return self.content
        return _narrowed(self.entries, tag.lower())

    def apprise_config(
        self, tag: str | None = None, asset: "apprise.AppriseAsset | None" = None
    ) -> "apprise.AppriseConfig":
        """A fresh AppriseConfig (one per caller or thread), narrowed to a tag's entries."""
        import apprise

        config = apprise.AppriseConfig()
        content = self.content if tag is None else self.content_for(tag)
        config.add_config(content, asset=asset, format="yaml")
        return config


@functools.lru_cache(maxsize=1024)
def _narrowed(entries: tuple[tuple[frozenset[str], str], ...], tag: str) -> str:
    documents = [yaml.safe_load(doc) for tags, doc in entries if tag in tags]
    if not documents:
        return "version: 1\nurls: []\n"
    merged = documents[0]
    merged["urls"] = [d["urls"][0] for d in documents]
    return yaml.safe_dump(merged, sort_keys=False)


def _entry_lines(content: str) -> list[int]:
    """The 1-based line of each `urls` entry, as far as the YAML tree tells."""
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if getattr(key, "value", None) == "urls" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _schema_of(entry: Any) -> str | None:
    keys: Iterable[Any] = (
        [entry] if isinstance(entry, str) else entry if isinstance(entry, dict) else []
    )
    for key in keys:
        if isinstance(key, str) and "://" in key:
            return key.split("://", 1)[0].strip().lower()
    return None


def load_apprise_config(path: Path) -> ChannelConfig:
    """Read and validate an Apprise YAML config; every URL must load and carry a tag."""
    import apprise
    from apprise.config.base import ConfigBase

    mail_plugin.register()  # the caseconfmail:// schema, before any URL is looked up
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise ChannelConfigError(f"{path}: cannot be read ({reason})") from None
    try:
        document = yaml.safe_load(content)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ChannelConfigError(f"{path}: not valid YAML at {where}: {problem}") from None
    if not isinstance(document, dict):
        raise ChannelConfigError(f"{path}: must be an Apprise YAML mapping with `urls:`")
    if document.get("version", 1) != 1:
        raise ChannelConfigError(f"{path}: version: only Apprise YAML version 1 is supported")
    if "include" in document:
        raise ChannelConfigError(
            f"{path}: include: not supported; keep every URL in this one file so it is validated"
        )
    urls = document.get("urls")
    if not isinstance(urls, list) or not urls:
        raise ChannelConfigError(f"{path}: urls: must be a non-empty list of URL entries")

    lines = _entry_lines(content)
    registry = apprise.NotificationManager()
    tags: set[str] = set()
    entries: list[tuple[frozenset[str], str]] = []
    for index, entry in enumerate(urls):
        where = f"{path}: urls[{index}]" + (f" (line {lines[index]})" if index < len(lines) else "")
        schema = _schema_of(entry)
        if schema is None:
            raise ChannelConfigError(f"{where}: no URL (expected `scheme://...` or a mapping)")
        if schema not in registry:
            raise ChannelConfigError(f"{where}: unknown Apprise schema {schema}://")
        single = {k: v for k, v in document.items() if k != "urls"}
        single["urls"] = [entry]
        single_text = yaml.safe_dump(single, sort_keys=False)
        with apprise.LogCapture(level=logging.WARNING) as captured:
            services, _ = ConfigBase.config_parse_yaml(single_text)
        if not services:
            said = " ".join(captured.getvalue().split())
            detail = f" ({sanitise(said)})" if said else ""
            raise ChannelConfigError(f"{where}: Apprise cannot use this {schema}:// URL{detail}")
        entry_tags: set[str] = set()
        for service in services:
            service_tags = {str(t) for t in getattr(service, "tags", ())}
            if not service_tags:
                raise ChannelConfigError(
                    f"{where}: the {schema}:// URL has no tag; give it `tag: <channel tag>` "
                    "so it is only ever used for the channel it belongs to"
                )
            entry_tags |= service_tags
        tags |= entry_tags
        entries.append((frozenset(entry_tags), single_text))
    return ChannelConfig(
        path=path,
        content=content,
        tags=frozenset(tags),
        entries=tuple(entries),
        uses_groups="groups" in document,
    )


def check_tags(config_tags: Iterable[str], required: Iterable[str]) -> None:
    """Raise ChannelConfigError naming every required tag no URL carries."""
    missing = sorted(set(required) - set(config_tags))
    if missing:
        raise ChannelConfigError(
            f"no Apprise URL is tagged {', '.join(missing)}: add one per channel to the "
            "Apprise config"
        )


@dataclass(frozen=True)
class Outgoing:
    """One message for one channel tag; the calendar goes as `invitation.ics`."""

    tag: str
    subject: str
    body: str
    calendar: str | None = None
    attachments: tuple[tuple[str, bytes], ...] = ()


class _WithIdempotencyKey(Mapping[str, str]):
    """A JSON webhook's extra headers, plus `Idempotency-Key` while an outbox row is sent: the
    row's digest, as in its e-mail's Message-ID, so a receiver recognises a message sent again
    after a crash between its acceptance and the outbox update. Read at each send, from the
    sending context (Apprise shares one plugin object between the sending threads)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def _now(self) -> dict[str, str]:
        key = mail_plugin.sending_key()
        if key is None:
            return self._headers
        return {**self._headers, "Idempotency-Key": mail_plugin.message_digest(key)}

    def __getitem__(self, name: str) -> str:
        return self._now()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())


class Transport:
    """Sends Outgoing messages through the URLs of a validated Apprise config.

    One Apprise object per channel tag, built on the tag's first send and then shared: its
    services are read-only during a send, so several threads may send at once. Within
    :meth:`batch`, e-mail goes over one SMTP connection per server (and thread at a time)
    instead of one per message.
    """

    def __init__(self, config_path: Path | str) -> None:
        self.channels = load_apprise_config(Path(config_path))
        self._senders: dict[str, apprise.Apprise] = {}
        self._lock = threading.Lock()
        self._batches = 0
        self._connections: mail_plugin.Connections | None = None

    @classmethod
    def shared(cls, config_path: Path | str) -> "Transport":
        """This process's Transport for a config file (a new one once the file changes)."""
        path = Path(config_path).resolve()
        try:
            stat = path.stat()
        except OSError:
            return cls(path)  # load_apprise_config names the file and the reason
        return _shared(path, stat.st_mtime_ns, stat.st_size)

    @property
    def tags(self) -> frozenset[str]:
        """Every tag the config's URLs carry."""
        return self.channels.tags

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Sends within this block (from any thread) keep their SMTP connections open; they
        are closed when the outermost batch ends."""
        with self._lock:
            self._batches += 1
            if self._connections is None:
                self._connections = mail_plugin.Connections()
        try:
            yield
        finally:
            with self._lock:
                self._batches -= 1
                ending = self._connections if self._batches == 0 else None
                if ending is not None:
                    self._connections = None
            if ending is not None:
                ending.close()

    def _sender(self, tag: str) -> "apprise.Apprise":
        with self._lock:
            sender = self._senders.get(tag)
            if sender is None:
                import apprise

                sender = apprise.Apprise()
                # Only the entries carrying the tag are parsed; Apprise still does the matching.
                sender.add(self.channels.apprise_config(tag))
                len(sender)  # parse now, under the lock, not in concurrent sends
                from apprise.plugins.custom_json import NotifyJSON

                for server in sender:
                    if isinstance(server, NotifyJSON):
                        server.headers = _WithIdempotencyKey(server.headers)  # type: ignore[assignment]
                self._senders[tag] = sender
            return sender

    def send(self, outgoing: Outgoing) -> None:
        """Send to exactly the URLs tagged ``outgoing.tag``; raise DeliveryError otherwise."""
        import apprise
        from apprise.attachment.memory import AttachMemory

        tag = outgoing.tag
        if not tag or not isinstance(tag, str):
            raise DeliveryError("the message has no channel tag")
        attachments: list[AttachMemory] = []
        if outgoing.calendar is not None:
            attachments.append(
                AttachMemory(
                    content=outgoing.calendar.encode("utf-8"),
                    name=CALENDAR_NAME,
                    mimetype="text/calendar",
                )
            )
        for name, data in outgoing.attachments:
            mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
            attachments.append(AttachMemory(content=bytes(data), name=name, mimetype=mimetype))

        sender = self._sender(tag)
        with mail_plugin.reusing(self._connections):
            result = sender.notify(
                body=outgoing.body,
                title=outgoing.subject,
                body_format=apprise.NotifyFormat.TEXT,
                tag=tag,
                match_always=False,
                attach=attachments or None,
            )
        if result.status == apprise.AppriseResultStatus.SUCCESS:
            return
        if result.status == apprise.AppriseResultStatus.NOMATCH:
            raise DeliveryError(f"no channel URL is tagged {tag!r}")
        said = [
            " ".join(entry.message.split())
            for entry in result.logs()
            if entry.level in ("WARNING", "ERROR", "CRITICAL")
        ]
        summary = f"{result.failed_count} of {len(result)} URL(s) tagged {tag!r} failed"
        reason = sanitise(f"{summary}: {'; '.join(said)}" if said else summary)
        log.warning("delivery failed: %s", reason)
        raise DeliveryError(reason)


@functools.lru_cache(maxsize=8)
def _shared(path: Path, mtime_ns: int, size: int) -> Transport:
    return Transport(path)
