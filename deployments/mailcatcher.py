"""A local SMTP catcher for `make run`, tests and benches: it stores, never relays.

    python -m deployments.mailcatcher [--host 127.0.0.1] [--port 2525] [--dir var/mail]

Each message is written as ``<UTC timestamp>-<counter>.eml`` (with ``X-Peer``,
``X-MailFrom`` and ``X-RcptTo`` headers carrying the envelope) and logged as one line.
"""

import argparse
import email
import email.policy
import itertools
import logging
import signal
import socket
import sys
import threading
import warnings
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

log = logging.getLogger("caseconf.mailcatcher")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Handler:
    """aiosmtpd handler: store each DATA as an .eml file and keep it in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.received: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data: bytes = envelope.original_content or envelope.content
        header = (
            f"X-Peer: {session.peer[0]}\r\n"
            f"X-MailFrom: {envelope.mail_from}\r\n"
            f"X-RcptTo: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        raw = header + data
        message = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))
        now = datetime.now(UTC)
        with self.lock:
            number = next(self.counter)
            self.received.append(message)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{now:%Y%m%dT%H%M%S.%fZ}-{number:05d}.eml"
        (self.folder / name).write_bytes(raw)
        log.info(
            "%s from=%s to=%s subject=%r",
            now.isoformat(timespec="seconds"),
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            str(message.get("Subject", "")),
        )
        return "250 Message accepted for delivery"


class MailCatcher:
    """An SMTP server on a background thread that keeps what it receives.

    With ``login=(user, password)`` it offers AUTH (without TLS) and accepts only those
    credentials; without it, it offers no AUTH and accepts every message.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2525,
        folder: Path | str = Path("var/mail"),
        *,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.folder = Path(folder)
        self.login = login
        self._handler = _Handler(self.folder)
        self._controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            self.login is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> "MailCatcher":
        """Start listening; returns self."""
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {}
        if self.login is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=False
            )
        controller = Controller(self._handler, hostname=self.host, port=self.port, **kwargs)
        if self.login is not None:
            # AUTH without TLS is deliberate on a loopback catcher; aiosmtpd warns per connection.
            warnings.filterwarnings(
                "ignore", "Requiring AUTH while not requiring TLS", category=UserWarning
            )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening (the files stay)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        """Every message received since start, in arrival order."""
        with self._handler.lock:
            return list(self._handler.received)

    def __enter__(self) -> "MailCatcher":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class ChatCatcher:
    """A local chat webhook receiver: keeps every POST body (and writes it to `folder`), and
    beside it the request's `Idempotency-Key` (None without one)."""

    def __init__(self, host: str, port: int, folder: Path | None = None) -> None:
        self.host, self.port, self.folder = host, port, folder
        self.received: list[bytes] = []
        self.keys: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> "ChatCatcher":
        received, keys, folder = self.received, self.keys, self.folder
        counter = itertools.count(1)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                keys.append(self.headers.get("Idempotency-Key"))
                received.append(body)
                if folder is not None:
                    folder.mkdir(parents=True, exist_ok=True)
                    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
                    (folder / f"{stamp}-{next(counter):05d}.json").write_bytes(body)
                    log.info(
                        "%s chat webhook %s (%d bytes)",
                        datetime.now(UTC).isoformat(timespec="seconds"),
                        self.path,
                        len(body),
                    )
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def main(argv: list[str] | None = None) -> int:
    """Run the catcher until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m deployments.mailcatcher")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--dir", type=Path, default=Path("var/mail"), dest="folder")
    parser.add_argument(
        "--chat-port", type=int, default=8765, help="local chat webhook receiver (0: none)"
    )
    parser.add_argument("--chat-dir", type=Path, default=Path("var/chat"), dest="chat_folder")
    args = parser.parse_args(argv)

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    catcher = MailCatcher(args.host, args.port, args.folder).start()
    print(
        f"mailcatcher: listening on {args.host}:{args.port}, writing to {args.folder}", flush=True
    )
    chat = (
        ChatCatcher(args.host, args.chat_port, args.chat_folder).start() if args.chat_port else None
    )
    if chat:
        print(f"mailcatcher: chat webhooks on {args.host}:{args.chat_port}, to {args.chat_folder}")
    try:
        while not stop.wait(0.5):
            pass
    finally:
        catcher.stop()
        if chat:
            chat.stop()
    print("mailcatcher: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
