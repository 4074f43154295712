"""A real Prefect server and caseconf's serving process, and a way to walk a case as the UI does."""

import fcntl
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import prefect
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL

from deployments.mailcatcher import free_port
from tasks.prefect_compat import form_input_key

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Prefect's database, migrated once per Prefect version and copied for each test server: its
#: migrations cost a server about ten seconds of CPU to start, and the suite starts several.
TEMPLATES = ROOT / "var" / "test-cache"


def migrated_prefect_database() -> Path:
    """An empty SQLite database with every Prefect migration applied (made once, under a lock,
    by whichever test process asks first)."""
    template = TEMPLATES / f"prefect-{prefect.__version__}.db"
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    with open(TEMPLATES / "prefect.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if template.exists():
            return template
        home = TEMPLATES / f"prefect-{prefect.__version__}-{os.getpid()}"
        shutil.rmtree(home, ignore_errors=True)
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", "server", "database", "upgrade", "-y"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        built = home / "prefect.db"
        with sqlite3.connect(built) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.replace(built, template)
        shutil.rmtree(home, ignore_errors=True)
        return template


class PrefectServer:
    """`prefect server start` on a free loopback port, with its own home and SQLite database."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        # Every resume starts a new flow-run process: let them share compiled bytecode even
        # where the environment forbids writing it (saves about half a second each).
        inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        return {
            **inherited,
            "PREFECT_HOME": str(self.home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            # A resume waits for the runner's poll (at 1 s, 0.9 to 1.4 s by Prefect's own
            # timestamps); each poll costs the server 10 to 20 ms of CPU, so not much faster.
            "CASECONF_SERVE_POLL_SECONDS": "0.5",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # A 503 (SQLite busy) is logged with its cause in server.log.
            "PREFECT_SERVER_LOG_RETRYABLE_ERRORS": "true",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        database = self.home / "prefect.db"  # Prefect's default under PREFECT_HOME
        if not database.exists() and "PREFECT_API_DATABASE_CONNECTION_URL" not in self.env():
            shutil.copyfile(migrated_prefect_database(), database)
        log = open(self.home / "server.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(BIN / "prefect"),
                "server",
                "start",
                "--no-services",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"Prefect server exited; see {self.home / 'server.log'}"
                    ) from None
                time.sleep(0.5)
        raise RuntimeError("Prefect server did not answer within 120 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Serving:
    """`python -m deployments serve`, as `make run` starts it; stopped with SIGTERM like a service."""

    server: PrefectServer
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)
    # What serves the flows (bench/steps.py serves a bare flow beside caseconf's).
    command: tuple[str, ...] = ("-m", "deployments", "serve")

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [sys.executable, *self.command],
            env=self.server.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.starts += 1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if b"being served" in self.log_path.read_bytes()[offset:]:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited; see {self.log_path}")
            time.sleep(0.3)
        raise RuntimeError("serve did not start within 90 s")

    def idle(self, run_id: UUID, timeout: float = 60) -> None:
        """Wait until every execution of the run has left its process (a suspended run lingers
        for a moment after its state says it waits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log_path.read_text(errors="replace")
            if log.count(f"flow-run/{run_id}") == log.count(f"Execution of flow run '{run_id}'"):
                return
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still has a process after {timeout} s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


WAITING = {StateType.PAUSED}
FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


#: One open client per thread and API address for the polls below: a fresh client for each
#: read cost the test 4 ms and the server 7 ms instead of 1.5 and 5.5, four times a second.
_POLLING: dict[tuple[int, str], SyncPrefectClient] = {}


def read_run(run_id: UUID) -> FlowRun:
    key = (threading.get_ident(), str(PREFECT_API_URL.value()))
    client = _POLLING.get(key)
    if client is None:
        client = _POLLING[key] = get_client(sync_client=True).__enter__()
    try:
        return client.read_flow_run(run_id)
    except Exception:
        # A server restarted or gone: the next read opens a new client, as before.
        _POLLING.pop(key, None)
        raise


def wait_for(run_id: UUID, states: set[StateType], timeout: float = 120) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = read_run(run_id)
        if run.state is not None and run.state.type in states:
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} did not reach {states} within {timeout} s: {run.state}")


class Walk:
    """One case's run, driven through the Prefect API the way the UI does."""

    def __init__(self, run_id: UUID) -> None:
        self.run_id = run_id

    @classmethod
    def refer(
        cls,
        referring_agency: str = "neustart-wien",
        stage: str = "custody",
        profile: str | None = None,
    ) -> "Walk":
        referral = {"referring_agency": referring_agency, "stage": stage}
        if profile:
            referral["profile"] = profile
        run = run_deployment(
            "case-lifecycle/referral", parameters={"referral": referral}, timeout=0
        )
        return cls(run.id)

    def settle(self, timeout: float = 120) -> FlowRun:
        """Wait until the run waits for a form or has ended."""
        return wait_for(self.run_id, WAITING | FINAL, timeout)

    def waits_at(self, step: str, attempt: int = 0) -> FlowRun:
        run = self.settle()
        assert run.state is not None
        assert run.state.type == StateType.PAUSED, f"expected to wait at {step}: {run.state}"
        key = run.state.state_details.pause_key or ""
        assert key.endswith(f"-{step}-{attempt}"), f"waits at {key}, expected {step}-{attempt}"
        return run

    def pause_key(self) -> str:
        run = read_run(self.run_id)
        assert run.state is not None
        return run.state.state_details.pause_key or ""

    def _form_input(self, part: str) -> str:
        """A part of the waiting form; the run saves it a moment after its state says it waits."""
        from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

        deadline = time.monotonic() + 15
        while True:
            try:
                with get_client(sync_client=True) as client:
                    return str(
                        client.read_flow_run_input(
                            self.run_id, form_input_key(self.pause_key(), part)
                        )
                    )
            except (ObjectNotFound, PrefectHTTPStatusError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def description(self) -> str:
        return self._form_input("description")

    def schema(self) -> dict[str, Any]:
        import json

        return dict(json.loads(self._form_input("schema")))

    def answer(self, **payload: Any) -> None:
        self._form_input("schema")  # the form is saved a moment after the run starts waiting
        resume_flow_run(self.run_id, run_input=payload)


def calendar_parts(message: Any) -> list[tuple[str, Any]]:
    """(method parameter, parsed calendar) of every text/calendar part of an email."""
    from icalendar import Calendar

    parts = []
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            parts.append(
                (part.get_param("method"), Calendar.from_ical(part.get_payload(decode=True)))
            )
    return parts


def text_of(message: Any) -> str:
    """Subject, plain-text body and calendar text of an email: what a message says (the
    minutes attachment, sent only on cleared channels, is left out)."""
    texts = [str(message.get("Subject", ""))]
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/calendar") and not part.get_filename():
            texts.append(part.get_payload(decode=True).decode())
    return "\n".join(texts)
