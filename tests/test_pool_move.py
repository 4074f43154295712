"""Moving an installation from `serve` to workers: cases waiting at different steps (a referral
at its first form, a case at its preparation, one at its information step with invitations sent,
one with a review scheduled) are moved onto the `caseconf` pool; nothing answered is asked again
and nothing sent is sent again. Its own Prefect server and caseconf database: the move touches
every open case."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlmodel import select

from deployments.mailcatcher import MailCatcher, free_port
from models.record.database import RecordSession, get_engine
from models.record.tables import Case, Notification, Review
from tests.prefect_harness import ROOT, PrefectServer, Serving, Walk, wait_for

pytestmark = [pytest.mark.production, pytest.mark.flow]

REP = "neustart-wien-1"
VIENNA = ZoneInfo("Europe/Vienna")
BIN = Path(sys.executable).parent


class OwnServer(PrefectServer):
    """The harness's server, with this test's own caseconf database and mail catcher."""

    def __init__(self, home: Path, extra: dict[str, str]) -> None:
        super().__init__(home)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}


@pytest.fixture(scope="module")
def installation(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OwnServer, str, MailCatcher]]:
    root = tmp_path_factory.mktemp("pool-move")
    mail = MailCatcher("127.0.0.1", free_port(), root / "mail").start()
    apprise = root / "apprise.yaml"
    apprise.write_text(
        (ROOT / "config" / "apprise.demo.yaml")
        .read_text()
        .replace("127.0.0.1:2525", f"127.0.0.1:{mail.port}")
        .replace("127.0.0.1:8765", f"127.0.0.1:{free_port()}")  # chat down: recorded, not sent
    )
    database = f"sqlite:///{root / 'caseconf.db'}"
    server = OwnServer(
        root / "prefect",
        {
            "CASECONF_DATABASE_URL": database,
            "CASECONF_APPRISE_CONFIG": str(apprise),
            "CASECONF_REFERENCE_PREFIX": "MOVE",
            "CASECONF_DELIVERY_RETRIES": "0",
            "CASECONF_SERVE_POLL_SECONDS": "0.5",
            "PREFECT_LOCAL_STORAGE_PATH": str(root / "results"),
        },
    )
    server.start()
    for command in ("migrate", "load"):
        subprocess.run(
            [sys.executable, "-m", "deployments", command],
            env=server.env(),
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server, database, mail
    finally:
        server.stop()
        mail.stop()


def step_of(walk: Walk) -> str:
    return walk.pause_key()


def test_waiting_cases_move_from_serve_to_workers(installation) -> None:
    server, database, mail = installation
    began = datetime.now(VIENNA)
    serving = Serving(server, server.home / "serve.log")
    serving.start()
    preparation = {
        "conference_type": "security",
        "starts_at": datetime.combine(began.date() + timedelta(days=10), clock(10)).isoformat(),
        "time_zone": "Europe/Vienna",
        "location": "jva-wien-room-2",
        "acting_representative": REP,
    }
    information = {
        "contributions": [
            {"agency": "jva-wien", "classification": "professional", "summary": "Stable."}
        ],
        "acting_representative": REP,
    }
    decision = {
        "decisions": ["Continue mentoring"],
        "actions": [],
        "next_review_on": (began.date() + timedelta(days=90)).isoformat(),
        "acting_representative": REP,
    }

    def referral(number: str) -> dict[str, object]:
        return {"file_number": number, "needs": ["mental_health"], "acting_representative": REP}

    # Under serve: R waits at its referral, A at preparation, C at information (invited), and
    # B has finished its conference (review scheduled). Walks advance together, step by step.
    walks = {name: Walk.refer("neustart-wien", stage="custody") for name in "RACB"}
    script: dict[str, list[Any]] = {
        "A": [referral("W-1")],
        "C": [referral("W-2"), preparation, {"acting_representative": REP}],
        "B": [referral("W-3"), preparation, {"acting_representative": REP}, information, decision],
    }
    for round_ in range(5):
        for name, answers in script.items():
            if round_ < len(answers):
                walks[name].settle()
                walks[name].answer(**answers[round_])
    for name in "RAC":
        walks[name].settle()
    assert wait_for(walks["B"].run_id, {StateType.COMPLETED}).state is not None
    expected = {"R": "referral-0", "A": "preparation-0", "C": "information-0"}
    for name, step in expected.items():
        assert step_of(walks[name]).endswith(step), (name, step_of(walks[name]))
    serving.stop()
    for name in "RAC":
        serving.idle(walks[name].run_id)
    sent_before = Counter(m["X-RcptTo"] + str(m["Subject"]) for m in mail.messages())
    assert sent_before and max(sent_before.values()) == 1

    env = {**server.env(), "CASECONF_HOME": str(ROOT)}
    setup = subprocess.run(
        [sys.executable, "-m", "deployments.production", "setup"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    moved = subprocess.run(
        [sys.executable, "-m", "deployments", "move-to-workers"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert moved.returncode == 0, moved.stdout + moved.stderr
    with RecordSession(get_engine(database)) as s:
        cases = {c.referral_file_number: c for c in s.exec(select(Case))}
        [review] = s.exec(select(Review)).all()
    a, c, b = cases["W-1"], cases["W-2"], cases["W-3"]
    report = moved.stdout
    assert (
        f"waiting case {a.reference}: run {walks['A'].run_id} -> {a.current_flow_run_id}" in report
    )
    assert (
        f"waiting case {c.reference}: run {walks['C'].run_id} -> {c.current_flow_run_id}" in report
    )
    assert "waiting referral" in report and str(walks["R"].run_id) in report
    assert f"scheduled review {b.reference} review 1: run" in report
    assert "4 run(s) moved" in report
    with get_client(sync_client=True) as client:
        for name in "RAC":
            old = client.read_flow_run(walks[name].run_id)
            assert old.state is not None and old.state.type == StateType.CANCELLED
        new_review = client.read_flow_run(UUID(review.flow_run_id))
    assert new_review.state is not None and new_review.state.type == StateType.SCHEDULED
    assert new_review.work_pool_name == "caseconf" and new_review.parameters == {
        "case_reference": b.reference,
        "cycle": 2,
    }
    assert review.status == "scheduled"

    # A worker on the pool takes over: each moved run waits at the step it waited at, with no
    # earlier step asked again and no message sent again.
    worker = subprocess.Popen(
        [str(BIN / "prefect"), "worker", "start", "--pool", "caseconf", "--type", "process"],
        env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1"},
        cwd=ROOT,
        stdout=open(server.home / "worker.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        moved_walks = {
            "A": Walk(UUID(str(a.current_flow_run_id))),
            "C": Walk(UUID(str(c.current_flow_run_id))),
        }
        moved_walks["A"].waits_at("preparation")
        moved_walks["C"].waits_at("information")
        with get_client(sync_client=True) as client:
            [new_referral] = [
                r
                for r in client.read_flow_runs()
                if r.idempotency_key == f"referral-move-{walks['R'].run_id}"
            ]
        moved_walks["R"] = Walk(new_referral.id)
        moved_walks["R"].waits_at("referral")
        # C goes on under the worker: its answer is taken, and its invitations are not re-sent.
        moved_walks["C"].answer(**information)
        moved_walks["C"].waits_at("decision")
        time.sleep(1)
        sent_after = Counter(m["X-RcptTo"] + str(m["Subject"]) for m in mail.messages())
        assert sent_after == sent_before
        with RecordSession(get_engine(database)) as s:
            rows = s.exec(select(Notification)).all()
        assert len({n.key for n in rows}) == len(rows)
        assert sum(1 for n in rows if n.status == "sent") == sum(sent_after.values())
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
