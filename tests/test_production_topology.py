"""docker/compose.yaml run natively: two API replicas on a fresh PostgreSQL database with Redis
messaging, one services process, two process workers on the `caseconf` pool, the deployments of
prefect.yaml, caseconf on PostgreSQL. A case is walked from referral to its scheduled review with
resumes sent to both replicas in turn; one replica is stopped mid-walk and one worker is killed
(SIGKILL, with its flow-run process) while it runs a step. The case completes with every row and
every message exactly once.

What differs from `docker compose up` is listed in tests/compose_native.py `native_stack`: the
local PostgreSQL and Redis (no Redis password, databases 14 and 15), free loopback ports, and the
workers polling every second instead of five (so the walk is quick). Without Caddy installed, the
proxy's internal listener is replaced by replica 1 (the test says so in its output).
"""

import contextlib
import json
import ssl
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter
from prefect.client.schemas.objects import StateType
from sqlmodel import select

from deployments.mailcatcher import ChatCatcher, MailCatcher, free_port
from models.record.database import RecordSession, get_engine
from models.record.tables import (
    ActionItem,
    AuditEvent,
    Case,
    Channel,
    Conference,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Review,
)
from models.vocabulary import Phase
from tasks.prefect_compat import parameter_schema
from tests.compose_native import Running, Unavailable, descendants, native_stack
from tests.prefect_harness import FINAL, Walk, wait_for

pytestmark = [pytest.mark.production, pytest.mark.flow]

REP = "neustart-wien-1"
VIENNA = ZoneInfo("Europe/Vienna")
#: Seconds without a heartbeat before the crash-detection automation marks a run Crashed
#: (compose default 90; heartbeats come every 30 s).
CRASH_AFTER = 40


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Running, MailCatcher, ChatCatcher]]:
    workdir = Path(tempfile.mkdtemp(prefix="caseconf-production-"))
    mail = MailCatcher("127.0.0.1", free_port(), workdir / "mail").start()
    chat = ChatCatcher("127.0.0.1", free_port()).start()
    try:
        with contextlib.contextmanager(native_stack)(
            workdir,
            mail_port=mail.port,
            chat_port=chat.port,
            redis_dbs=(14, 15),
            crash_after=CRASH_AFTER,
            worker_query_seconds=1,
        ) as running:
            if running.proxy_url is None:
                warnings.warn(
                    "caddy is not installed: the proxy is replaced by replica 1 and the auth "
                    "string is checked on the replicas only (apt-get install -y caddy)",
                    stacklevel=1,
                )
            yield running, mail, chat
    except Unavailable as reason:
        pytest.skip(f"SKIPPED LOUDLY: the native production topology needs {reason}")
    finally:
        chat.stop()
        mail.stop()


def running_on(up: Running, run_id: UUID, timeout: float = 60) -> tuple[str, int]:
    """The worker whose process tree runs this flow run now, and the run's pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        if run.state is not None and run.state.type in FINAL | {StateType.PAUSED}:
            raise AssertionError(f"the step ended before it could be interrupted: {run.state}")
        if run.state is not None and run.state.type == StateType.RUNNING and run.infrastructure_pid:
            pid = int(run.infrastructure_pid.rsplit(":", 1)[-1])  # "<pid>" or "<host>:<pid>"
            for name in ("worker-1", "worker-2"):
                if pid in descendants(up.stack.processes[name].pid):
                    return name, pid
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not start on a worker within {timeout} s")


def current_run(database: str, case_id: int | None) -> str | None:
    with RecordSession(get_engine(database)) as s:
        case = s.get(Case, case_id)
        assert case is not None
        return case.current_flow_run_id


def rows(database: str, model: type, **where: object) -> list:
    with RecordSession(get_engine(database), expire_on_commit=False) as s:
        query: Any = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(s.exec(query))


def http(url: str, auth: str | None, body: dict | None = None) -> int:
    """Status of a request through the proxy's TLS listener (Caddy's internal CA)."""
    import base64

    request = urllib.request.Request(
        url, data=json.dumps(body).encode() if body is not None else None, method="POST"
    )
    request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=10, context=insecure) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def deployments_match_serve(up: Running) -> None:
    """Same names, flows, tags, schedules and run forms as `python -m deployments serve` (whose
    forms carry the directory's choices: the test database holds the same demo directory)."""
    from deployments.serve import deployments

    with up.api_settings(up.api_urls[0]), get_client(sync_client=True) as client:
        for served in deployments():
            registered = client.read_deployment_by_name(f"{served.flow_name}/{served.name}")
            assert registered.work_pool_name == "caseconf", served.name
            assert registered.tags == served.tags, served.name
            assert registered.parameter_openapi_schema == (
                parameter_schema(served).model_dump(exclude_unset=True)
            ), served.name
            intervals = [getattr(s.schedule, "interval", None) for s in registered.schedules or []]
            assert intervals == [
                getattr(s.schedule, "interval", None) for s in served.schedules or []
            ]


def test_a_case_survives_a_lost_replica_and_a_killed_worker(stack, database: str) -> None:
    """(One test for the whole stack: with `make test`'s two processes, a second test of this
    module could start a second stack.)"""
    up, mail, chat = stack
    deployments_match_serve(up)
    a, b = up.api_urls
    database = up.caseconf_database_url
    began = datetime.now(VIENNA)
    t0 = time.monotonic()

    def mark(what: str) -> None:  # shown with the output of a failing run
        print(f"{time.monotonic() - t0:6.1f} s  {what}", flush=True)

    in_days = lambda days: (began.date() + timedelta(days=days)).isoformat()  # noqa: E731

    if up.public_url:  # TLS and Prefect's auth string, through the proxy
        assert http(f"{up.public_url}/api/flows/filter", None, {}) == 401
        assert http(f"{up.public_url}/api/flows/filter", "caseconf:wrong", {}) == 401
        assert http(f"{up.public_url}/api/flows/filter", up.auth_string, {}) == 200

    with up.api_settings(a):
        walk = Walk.refer("neustart-wien", stage="custody")
        walk.waits_at("referral")
        walk.answer(file_number="W-2026/0077", needs=["mental_health"], acting_representative=REP)
    mark("referral answered through replica 1")
    with up.api_settings(b):
        walk.waits_at("preparation")
        with RecordSession(get_engine(database)) as s:
            case = s.exec(select(Case).where(Case.current_flow_run_id == str(walk.run_id))).one()
        walk.answer(
            conference_type="security",
            starts_at=datetime.combine(began.date() + timedelta(days=10), clock(10)).isoformat(),
            time_zone="Europe/Vienna",
            location="jva-wien-room-2",
            acting_representative=REP,
        )
    with up.api_settings(a):
        walk.waits_at("stakeholders")
    with up.api_settings(b):
        walk.answer(acting_representative=REP)
    mark("stakeholders answered through replica 2")
    # Replica 2 goes away (SIGTERM, as `docker compose stop`) while the worker replays the run
    # through the proxy; every later call goes to replica 1.
    up.stack.terminate("prefect-api-2")

    with up.api_settings(a):
        walk.waits_at("information")
        items = [
            {"agency": "dsn", "classification": "restricted", "pointer": "DSN case system, 7"},
            {
                "agency": "jva-wien",
                "classification": "professional",
                "summary": "Attends the education programme.",
            },
        ]
        walk.answer(contributions=items, acting_representative=REP)
        # The worker running this step dies with everything it started (a container killed).
        worker, pid = running_on(up, walk.run_id)
        mark(f"killed {worker} while it ran the information step")
        up.stack.kill(worker)
        up.stack.start(worker)  # compose restarts it (restart: unless-stopped)

        # No heartbeat: the automation marks the run Crashed; its trigger starts the recovery,
        # which brings the case back as a new run of cycle 1 on the other worker.
        # The automation checks for missing heartbeats on its own clock: on a loaded machine it
        # has taken over 100 s after the kill (a CI run), so give it two minutes more.
        crashed = wait_for(walk.run_id, FINAL, timeout=CRASH_AFTER + 120)
        mark("the run is marked crashed")
        assert crashed.state is not None and crashed.state.type == StateType.CRASHED
        assert "No heartbeat" in (crashed.state.message or "")
        deadline = time.monotonic() + 60
        while current_run(database, case.id) == str(walk.run_id):
            assert time.monotonic() < deadline, "the crashed run was not brought back"
            time.sleep(0.5)
        walk = Walk(UUID(str(current_run(database, case.id))))
        run = walk.settle()
        assert run.state is not None and run.state.type == StateType.PAUSED, run.state
        if walk.pause_key().endswith("-information-0"):
            walk.answer(
                contributions=items, acting_representative=REP
            )  # the kill came before it was saved
        walk.waits_at("decision")
        mark("the new run waits at the decision")
        walk.answer(
            decisions=["Continue mentoring"],
            actions=[
                {
                    "owner_agency": "jva-wien",
                    "description": "Arrange a course",
                    "due_on": in_days(30),
                }
            ],
            next_review_on=in_days(60),
            acting_representative=REP,
        )
        done = wait_for(walk.run_id, FINAL, timeout=120)
        mark("the cycle completed")
        assert done.state is not None and done.state.type == StateType.COMPLETED, done.state

        [review] = rows(database, Review, case_id=case.id)
        with get_client(sync_client=True) as client:
            scheduled = client.read_flow_run(UUID(review.flow_run_id))
            recoveries = client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["recover"]))
            )
            case_runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags={"all_": [f"case:{case.reference}"]}  # type: ignore[arg-type]
                )
            )

    # The review months ahead is a scheduled run on the pool, for a worker to pick up when due.
    assert scheduled.state is not None and scheduled.state.type == StateType.SCHEDULED
    assert scheduled.work_queue_name == "default" and scheduled.work_pool_name == "caseconf"
    assert review.cycle == 2 and review.due_at.astimezone(VIENNA).date() == date.fromisoformat(
        in_days(60)
    )
    assert any(r.state and r.state.type == StateType.COMPLETED for r in recoveries)
    states = Counter(r.state.type for r in case_runs if r.state is not None)
    assert states[StateType.CRASHED] == 1 and states[StateType.COMPLETED] == 1, states

    # Every row exactly once, although a replica went away, a worker died mid-step and the
    # new run replayed every step before it.
    with RecordSession(get_engine(database)) as s:
        now_case = s.get(Case, case.id)
        assert now_case is not None and now_case.phase == Phase.review_scheduled
    [conference] = rows(database, Conference, case_id=case.id)
    participants = rows(database, Participant, conference_id=conference.id)
    assert len({p.agency_id for p in participants}) == len(participants)
    assert len(rows(database, InformationItem, conference_id=conference.id)) == 2
    assert len(rows(database, PlanItem, conference_id=conference.id)) == 1
    assert len(rows(database, ActionItem, case_id=case.id)) == 1
    audit = Counter(e.action for e in rows(database, AuditEvent, case_id=case.id))
    assert audit["case.referred"] == 1 and audit["conference.decision"] == 1, audit
    notifications = rows(database, Notification, case_id=case.id)
    channels = {p.agency_id: rows(database, Channel, agency_id=p.agency_id) for p in participants}
    assert len([n for n in notifications if n.event == "invitation"]) == sum(
        len(c) for c in channels.values()
    )
    assert {n.status for n in notifications} == {"sent"}, [n.last_error for n in notifications]

    # Every message exactly once: one e-mail per e-mail row, one chat post per chat row.
    chat_tags = {c.tag for cs in channels.values() for c in cs if c.kind == "chat"}
    emails = Counter(m["X-RcptTo"] for m in mail.messages() if case.reference in str(m["Subject"]))
    assert emails == Counter(
        f"{n.channel}@demo.invalid" for n in notifications if n.channel not in chat_tags
    )
    posts = [p for p in chat.received if case.reference.encode() in p]
    assert len(posts) == len([n for n in notifications if n.channel in chat_tags])

    # Task results went to the shared volume, none to a worker's own home.
    results = up.stack.paths["/var/lib/caseconf/results"]
    assert any(results.iterdir())
    for name in ("worker-1", "worker-2"):
        home = Path(up.stack.environment(name)["PREFECT_HOME"])
        assert not (home / "storage").exists() or not any((home / "storage").iterdir())
    assert pid not in descendants(up.stack.processes[worker].pid)
    assert up.stack.processes["prefect-api-2"].poll() is not None  # it really was gone
