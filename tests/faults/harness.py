"""Crash injection at the task boundaries of a conference cycle, counted against a crash-free walk.

A walk is one conference cycle of a new case (security or social network), from referral until
its review is scheduled, driven through the Prefect API as a coordinator does. When the case's
run has crashed, the harness does what an operator does: `python -m deployments recover` (the
serving process keeps running; the runner itself survives a flow-run process that dies), or,
when the run died before the case existed, refers the person again. What the walk left (rows,
outbox, messages received) is compared with a crash-free walk: what is missing is lost, what
is there more often is a duplicated effect, and the same message received twice (one
Message-ID, or for a chat message one Idempotency-Key) is a duplicate delivery: at least once,
recognisably the same.
"""

import os
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
from prefect.client.schemas.objects import StateType
from sqlmodel import col, select

from models.record.database import RecordSession, get_engine
from models.record.tables import (
    ActionItem,
    Agency,
    AuditEvent,
    Case,
    Conference,
    ConsentRecord,
    InformationItem,
    Notification,
    Participant,
    PlanItem,
    Review,
)
from models.vocabulary import Phase
from tests.prefect_harness import FINAL, ROOT, WAITING, Walk, read_run, wait_for

FAULTS = Path(__file__).resolve().parent
REP = "neustart-wien-1"
VIENNA = ZoneInfo("Europe/Vienna")
KINDS = ("security", "social_network")
#: The steps a cycle asks, by the suffix of their pause key.
STEPS = (
    "consent-refused",
    "stakeholders-security",
    "action-review",
    "family-only",
    "referral",
    "preparation",
    "consent",
    "stakeholders",
    "information",
    "decision",
)


def hooked_env(base: dict[str, str], faults_dir: Path) -> dict[str, str]:
    """The serving process's environment with the crash hook (tests/faults/sitecustomize.py)."""
    path = base.get("PYTHONPATH", "")
    return {
        **base,
        "PYTHONPATH": f"{FAULTS}:{ROOT}" + (f":{path}" if path else ""),
        "CASECONF_FAULTS_DIR": str(faults_dir),
    }


class HookedServer:
    """A Prefect server as the serving process sees it, with the crash hook in its env."""

    def __init__(self, server: Any, faults_dir: Path) -> None:
        self.server, self.faults_dir = server, faults_dir
        self.api_url = server.api_url
        self.home = server.home

    def env(self) -> dict[str, str]:
        return hooked_env(self.server.env(), self.faults_dir)


def answers(kind: str, today: date) -> dict[str, dict[str, Any]]:
    """What the coordinator answers at each step (dates from the walk's day, read once)."""

    def day(n: int) -> str:
        return (today + timedelta(days=n)).isoformat()

    social = kind == "social_network"
    decision: dict[str, Any] = {
        "decisions": ["Continue the programme"],
        "actions": [
            {"owner_agency": "neustart-wien", "description": "Weekly check-in", "due_on": day(30)}
        ],
        "next_review_on": day(60),
        "acting_representative": REP,
    }
    if social:
        decision["plan_decisions"] = [{"item": 1, "outcome": "accepted", "reason": "Fits"}]
    return {
        "referral": {"needs": ["housing"], "acting_representative": REP},
        "preparation": {
            "conference_type": kind,
            "starts_at": datetime.combine(today + timedelta(days=10), clock(10)).isoformat(),
            "time_zone": "Europe/Vienna",
            "location": "jva-wien-room-2",
            "acting_representative": REP,
        },
        "consent": {
            "client_consent": "granted",
            "family_involvement": True,
            "acting_representative": REP,
        },
        "stakeholders": {"acting_representative": REP}
        | ({"intermediary": "jva-wien"} if social else {}),
        "information": {
            "contributions": [
                {"agency": "neustart-wien", "classification": "professional", "summary": "Report."}
            ],
            "acting_representative": REP,
        },
        "family-only": {"plan_items": ["Keep the apprenticeship"], "acting_representative": REP},
        "decision": decision,
    }


@dataclass
class Walked:
    """One walk: its case, how often it crashed and was brought back, and what it left."""

    kind: str
    reference: str
    case_id: int
    crashes: int = 0
    recoveries: int = 0
    referred_again: int = 0
    answers: int = 0
    seconds: float = 0.0
    state: dict[str, Counter[Any]] = field(default_factory=dict)


def recover() -> None:
    """What an operator runs after a crash (serve keeps running)."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    done = subprocess.run(
        [sys.executable, "-m", "deployments", "recover"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def step_of(pause_key: str) -> str:
    body = pause_key.rsplit("-", 1)[0]
    return next(s for s in STEPS if body.endswith(s))


def walk_cycle(
    kind: str,
    *,
    database: str,
    today: date,
    mail: Any,
    chat: Any | None = None,
    operator: Callable[[], None] = recover,
    timeout: float = 600,
) -> Walked:
    """Walk one cycle of a new case, bringing it back after every crash, until its review is
    scheduled; returns what it left."""
    started = time.monotonic()
    file_number = f"FLT-{uuid.uuid4().hex[:10]}"
    script = answers(kind, today)
    script["referral"] = {**script["referral"], "file_number": file_number}
    stage = "pre_release" if kind == "social_network" else "custody"
    walk = Walk.refer("neustart-wien", stage=stage)
    crashes = recoveries = referred_again = answered = 0
    last_crashed: str | None = None
    while True:
        assert time.monotonic() - started < timeout, f"walk did not finish: {kind}"
        case = _case(database, file_number)
        run_id = (
            UUID(case.current_flow_run_id) if case and case.current_flow_run_id else walk.run_id
        )
        try:
            run = wait_for(run_id, WAITING | FINAL, timeout=240)
        except (OSError, httpx.HTTPError):
            time.sleep(1.0)  # the Prefect server is down: wait as a coordinator would
            continue
        state = run.state
        assert state is not None
        if state.type == StateType.PAUSED:
            step = step_of(state.state_details.pause_key or "")
            Walk(run_id).answer(**script[step])
            answered += 1
            _left_waiting(run_id, state.state_details.pause_key)
            continue
        if case and case.phase == Phase.review_scheduled and state.type in FINAL:
            if state.type != StateType.COMPLETED and str(run_id) != last_crashed:
                crashes += 1  # died after its review was scheduled: nothing left to bring back
            break
        if state.type == StateType.COMPLETED:
            time.sleep(0.5)  # the case's next run is being recorded
            continue
        # Crashed (or cancelled by the dying process): bring it back as an operator would.
        if str(run_id) != last_crashed:
            crashes += 1
            last_crashed = str(run_id)
        if case is None:
            walk = Walk.refer("neustart-wien", stage=stage)
            referred_again += 1
            continue
        operator()
        recoveries += 1
        _new_run(database, file_number, str(run_id))
    assert case is not None and case.id is not None
    walked = Walked(
        kind,
        case.reference,
        case.id,
        crashes,
        recoveries,
        referred_again,
        answered,
        time.monotonic() - started,
    )
    time.sleep(1.0)  # the last deliveries' outbox updates
    walked.state = left_behind(database, case.id, case.reference, mail, chat)
    return walked


def _case(database: str, file_number: str) -> Case | None:
    with RecordSession(get_engine(database), expire_on_commit=False) as s:
        return s.exec(select(Case).where(Case.referral_file_number == file_number)).first()


def _left_waiting(run_id: UUID, pause_key: str | None, timeout: float = 120) -> None:
    """Wait until the run has taken the answer (left the pause it was in)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_run(run_id).state
        if state is None or state.type != StateType.PAUSED:
            return
        if state.state_details.pause_key != pause_key:
            return
        time.sleep(0.25)


def _new_run(database: str, file_number: str, crashed: str, timeout: float = 60) -> None:
    """Wait until the recovered run has recorded itself as the case's run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        case = _case(database, file_number)
        if case is not None and case.current_flow_run_id != crashed:
            return
        time.sleep(0.5)


def left_behind(
    database: str, case_id: int, reference: str, mail: Any, chat: Any | None
) -> dict[str, Counter[Any]]:
    """What a walk left, with ids and the reference taken out so walks compare."""
    with RecordSession(get_engine(database)) as s:
        codes = {a.id: a.code for a in s.exec(select(Agency))}
        conferences = [
            c.id for c in s.exec(select(Conference).where(Conference.case_id == case_id))
        ]

        def rows(model: type, *where: Any) -> list[Any]:
            return list(s.exec(select(model).where(*where)))

        state: dict[str, Counter[Any]] = {
            "conferences": Counter(
                (c.cycle, c.conference_type, c.phase, c.ical_sequence)
                for c in rows(Conference, Conference.case_id == case_id)
            ),
            "participants": Counter(
                (codes.get(p.agency_id), str(p.role), codes.get(p.intermediary_agency_id))
                for p in rows(Participant, col(Participant.conference_id).in_(conferences))
            ),
            "information": Counter(
                (codes.get(i.agency_id), i.classification, i.summary)
                for i in rows(InformationItem, col(InformationItem.conference_id).in_(conferences))
            ),
            "plan items": Counter(
                (p.number, p.text, p.outcome)
                for p in rows(PlanItem, col(PlanItem.conference_id).in_(conferences))
            ),
            "actions": Counter(
                (codes.get(a.owner_agency_id), a.description, a.due_on, a.status)
                for a in rows(ActionItem, ActionItem.case_id == case_id)
            ),
            "consent": Counter(
                (r.scope, r.decision) for r in rows(ConsentRecord, ConsentRecord.case_id == case_id)
            ),
            "audit": Counter(e.action for e in rows(AuditEvent, AuditEvent.case_id == case_id)),
            "reviews": Counter(
                (r.cycle, r.version, r.status) for r in rows(Review, Review.case_id == case_id)
            ),
            "outbox": Counter(
                (n.event, codes.get(n.recipient_agency_id), str(n.recipient_role), n.channel)
                for n in rows(Notification, Notification.case_id == case_id)
            ),
        }
    messages = [m for m in mail.messages() if reference in str(m["Subject"])]
    by_id: Counter[str] = Counter(str(m["Message-ID"]) for m in messages)
    first = {}
    for m in messages:
        first.setdefault(str(m["Message-ID"]), m)
    state["messages"] = Counter(
        (str(m["X-RcptTo"]), _plain(str(m["Subject"]), reference)) for m in first.values()
    )
    state["message copies"] = Counter({k: v - 1 for k, v in by_id.items() if v > 1})
    if chat is not None:
        # A chat message sent again carries the same Idempotency-Key: a copy, as for e-mail.
        posted = [
            (key, body)
            for key, body in zip(chat.keys, chat.received, strict=True)
            if reference.encode() in body
        ]
        by_key: Counter[str | None] = Counter(key for key, _ in posted if key is not None)
        once = [b for k, b in posted if k is None] + list(
            {k: b for k, b in reversed(posted) if k is not None}.values()
        )
        state["chat"] = Counter(_plain(b.decode(errors="replace"), reference) for b in once)
        state["chat copies"] = Counter({k: v - 1 for k, v in by_key.items() if v > 1})
    return state


_NUMBERED = re.compile(r"(Nr\.|no\.) \d+")


def _plain(text: str, reference: str) -> str:
    """A message's text without what differs between walks: the reference, action numbers."""
    return _NUMBERED.sub(r"\1 N", text.replace(reference, "REF"))


@dataclass
class Compared:
    lost: int
    duplicated: int
    duplicate_deliveries: int
    detail: list[str]


def compare(baseline: dict[str, Counter[Any]], walked: dict[str, Counter[Any]]) -> Compared:
    lost = duplicated = 0
    detail: list[str] = []
    for part, expected in baseline.items():
        if part in ("message copies", "chat copies"):
            continue
        got = walked.get(part, Counter())
        missing, extra = expected - got, got - expected
        lost += sum(missing.values())
        duplicated += sum(extra.values())
        detail += [f"{part}: missing {k!r} x{v}" for k, v in missing.items()]
        detail += [f"{part}: extra {k!r} x{v}" for k, v in extra.items()]
    copies = sum(walked.get("message copies", Counter()).values()) + sum(
        walked.get("chat copies", Counter()).values()
    )
    return Compared(lost, duplicated, copies, detail)


def crash_points(trace: Path) -> list[str]:
    """Every task boundary the crash-free walk passed, in order: before and after each task run,
    as `<point>#<n>`, the n-th time the walk passed that point (a step's forms are forgotten,
    and a message delivered, many times a cycle: each time is a boundary of its own)."""
    passed: Counter[str] = Counter()
    points = []
    for line in trace.read_text().splitlines():
        if point := line.strip():
            passed[point] += 1
            points.append(f"{point}#{passed[point]}")
    return points


@dataclass
class Injected:
    kind: str
    point: str
    reached: bool
    walked: Walked
    compared: Compared


def inject(
    kind: str,
    point: str,
    *,
    faults_dir: Path,
    baseline: Walked,
    database: str,
    today: date,
    mail: Any,
    chat: Any | None = None,
) -> Injected:
    """Walk a cycle with a SIGKILL at `point`, then compare with the crash-free walk."""
    (faults_dir / "trace").write_text("")
    (faults_dir / "crashed").unlink(missing_ok=True)
    (faults_dir / "crash_at").write_text(point)
    walked = walk_cycle(kind, database=database, today=today, mail=mail, chat=chat)
    reached = (faults_dir / "crashed").exists()
    (faults_dir / "crash_at").unlink(missing_ok=True)
    return Injected(kind, point, reached, walked, compare(baseline.state, walked.state))


def inject_server_kill(
    kind: str,
    point: str,
    *,
    server: Any,
    faults_dir: Path,
    baseline: Walked,
    database: str,
    today: date,
    mail: Any,
    chat: Any | None = None,
    down_for: float = 5.0,
) -> Injected:
    """Walk a cycle during which the Prefect server is SIGKILLed at `point` (by the case's own
    flow-run process, so it is mid-step) and started again `down_for` seconds later on the same
    port and database, then compare with the crash-free walk."""
    import threading

    assert server.process is not None
    (faults_dir / "trace").write_text("")
    (faults_dir / "crashed").unlink(missing_ok=True)
    (faults_dir / "kill_pid").write_text(str(server.process.pid))
    (faults_dir / "crash_at").write_text(point)
    stop = threading.Event()

    def restart_when_killed() -> None:
        while not stop.is_set():
            if (faults_dir / "crashed").exists():
                server.process.wait()
                time.sleep(down_for)
                server.start()
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=restart_when_killed, daemon=True)
    watcher.start()
    try:
        walked = walk_cycle(kind, database=database, today=today, mail=mail, chat=chat)
    finally:
        stop.set()
        watcher.join(timeout=120)
    reached = (faults_dir / "crashed").exists()
    for name in ("crash_at", "kill_pid"):
        (faults_dir / name).unlink(missing_ok=True)
    compared = compare(baseline.state, walked.state)
    return Injected(kind, f"server killed {point}", reached, walked, compared)


def baseline_walk(
    kind: str, *, faults_dir: Path, database: str, today: date, mail: Any, chat: Any | None = None
) -> tuple[Walked, list[str]]:
    """The crash-free walk, and the task boundaries it passed."""
    (faults_dir / "crash_at").unlink(missing_ok=True)
    (faults_dir / "trace").write_text("")
    walked = walk_cycle(kind, database=database, today=today, mail=mail, chat=chat)
    assert walked.crashes == 0, "the crash-free walk crashed"
    return walked, crash_points(faults_dir / "trace")


def walk_day() -> date:
    """The day the run began in Vienna; every walk of the run counts its dates from it."""
    return datetime.now(VIENNA).date()


__all__ = [
    "FINAL",
    "KINDS",
    "HookedServer",
    "Injected",
    "Walked",
    "baseline_walk",
    "compare",
    "inject",
    "inject_server_kill",
    "walk_cycle",
    "walk_day",
]
