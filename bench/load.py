"""Load: the sweep over many open cases, and many cases driven at once on the embedded default.

    python -m bench load sweep [--cases 1000]
    python -m bench load cases [--cases 200] [--waiting 1000] [--rest SECONDS]

`sweep`: N open cases (each a conference in two days, one action due in three) written into a
fresh SQLite database; the sweep's queueing (`queue_due_notices`) is timed over them against a
baseline of 10 cases in the same execution, as time per case (a ratio near 1 means it grows
with the number of cases and no faster): the first sweep (queues every reminder and notice) and
the steady state (the same sweep again 10 minutes later: nothing new). CPU time and the peak
memory of this process are shown.

`cases`: a Prefect server and `python -m deployments serve` (temporary folders, SQLite, loopback
mail), then N referrals started at once through `case-lifecycle/referral` and each answered to
the third form (two resumes); time and CPU (serve's and the server's, with their children) from
start until every run waits there, per case, against one case alone in the same execution. Then
at rest: flow-run processes (waiting holds none; the warm start's forkserver is not a run's),
CPU over a quiet spell and memory, with the N cases waiting and again with `--waiting` in all
(the rest made through the API as review runs waiting at a form); last, one case driven with all
of them waiting, against one alone. Exits non-zero only on errors.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo


def _world(tmp: Path) -> str:
    url = f"sqlite:///{tmp / 'caseconf.db'}"
    os.environ["CASECONF_DATABASE_URL"] = url
    os.environ["PREFECT_HOME"] = str(tmp / "prefect")
    from models.config.directory import load_directory
    from models.record.agencies import sync_directory
    from models.record.database import migrate, session_scope

    migrate(url)
    with session_scope(url) as session:
        sync_directory(session, load_directory())
    return url


def _open_cases(url: str, n: int, now: datetime, prefix: str) -> None:
    from sqlmodel import select

    from models.record.database import session_scope
    from models.record.tables import ActionItem, Agency
    from models.rules.cases import refer_case
    from models.rules.conference import open_conference
    from models.rules.participants import record_participants
    from models.rules.stakeholders import Proposal
    from models.vocabulary import ConferenceKind, ConferenceType, Need, Role, Stage

    began = now - timedelta(days=20)
    with session_scope(url) as session:
        owner = session.exec(select(Agency).where(Agency.code == "jva-wien")).one()
        for i in range(n):
            case = refer_case(
                session,
                referring_agency="neustart-wien",
                file_number=f"{prefix}-{i}",
                stage=Stage.custody,
                needs=[Need.housing],
                profile="generic",
                acting_representative_code="neustart-wien-1",
                reference_prefix=prefix,
                flow_run_id=None,
                now=began,
            )
            conference = open_conference(
                session,
                case=case,
                kind=ConferenceKind.first,
                conference_type=ConferenceType.security,
                starts_at=now + timedelta(days=2) - timedelta(minutes=i % 60),
                time_zone="Europe/Vienna",
                location="Room 1",
                now=began,
            )
            record_participants(
                session,
                conference=conference,
                proposals=[
                    Proposal("neustart-wien", Role.lead, "bench"),
                    Proposal("jva-wien", Role.core, "bench"),
                ],
                client_and_family=False,
                family_involved=False,
                intermediary_code=None,
            )
            session.add(
                ActionItem(
                    case_id=case.id,  # type: ignore[arg-type]
                    conference_id=conference.id,  # type: ignore[arg-type]
                    owner_agency_id=owner.id,  # type: ignore[arg-type]
                    description="Arrange a course",
                    due_on=(now + timedelta(days=3)).date(),
                    created_at=began,
                    updated_at=began,
                )
            )


def _sweep(url: str, now: datetime) -> tuple[float, float, int]:
    from models.record.database import session_scope
    from models.rules.followup import queue_due_notices

    wall, cpu = time.perf_counter(), time.process_time()
    with session_scope(url) as session:
        ids = queue_due_notices(
            session, now=now, reminder_lead=timedelta(hours=48), due_soon=timedelta(days=7)
        )
    return time.perf_counter() - wall, time.process_time() - cpu, len(ids)


def sweep_bench(cases: int) -> None:
    now = datetime(2034, 5, 10, 7, 0, tzinfo=UTC)
    rows = []
    for n in (10, cases):
        tmp = Path(tempfile.mkdtemp(prefix="caseconf-bench-load-"))
        try:
            url = _world(tmp)
            made = time.perf_counter()
            _open_cases(url, n, now, "LOAD")
            made = time.perf_counter() - made
            first = _sweep(url, now)
            again = _sweep(url, now + timedelta(minutes=10))
            rows.append((n, made, first, again))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"bench load sweep: {cases} open cases against 10 (peak memory {peak:.0f} MB)")
    print("| cases | first sweep s | per case ms | CPU s | rows | steady sweep s | per case ms |")
    print("|---|---|---|---|---|---|---|")
    for n, _, (w1, c1, r1), (w2, _, _) in rows:
        print(
            f"| {n} | {w1:.2f} | {1000 * w1 / n:.1f} | {c1:.2f} | {r1} | {w2:.2f} | "
            f"{1000 * w2 / n:.1f} |"
        )
    (base, _, (b1, _, _), (b2, _, _)), (n, _, (w1, _, _), (w2, _, _)) = rows
    print(
        f"bench load sweep: per-case ratio {cases} vs 10: first {w1 / n / (b1 / base):.2f}, "
        f"steady {w2 / n / (b2 / base):.2f}"
    )


def _run_processes(pid: int) -> list[int]:
    """The serving process's flow-run processes: its own children under Prefect's start, the
    forkserver's under the warm start (deployments/warm_start.py); not the forkserver and the
    resource tracker themselves. A forked run keeps the forkserver's command line, so the
    forkserver is told apart by being serve's child."""
    from tests.compose_native import children

    tree, runs = children(), []
    for child in tree.get(pid, []):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.forkserver" in command:
            runs += tree.get(child, [])
        elif b"multiprocessing.resource_tracker" not in command:
            runs.append(child)
    return runs


def _tree_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, resident MB) of a process and its descendants, counting the CPU of the
    children they have already reaped (a finished flow run's, through the forkserver)."""
    from tests.compose_native import descendants

    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    cpu = rss = 0.0
    for p in [pid, *descendants(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu += sum(int(f) for f in fields[11:15]) / ticks  # utime, stime, cutime, cstime
        rss += int(fields[21]) * page / 2**20
    return cpu, rss


def make_waiting(count: int, prefix: str) -> float:
    """`count` review runs waiting at a form, made through the API of the current settings (as
    a case at a form, not walked: a walk is seconds per step); returns seconds taken."""
    from prefect.client.orchestration import get_client
    from prefect.states import Suspended

    began = time.perf_counter()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("case-review/review")
        for n in range(count):
            reference = f"{prefix}-{n:05d}"
            # Created suspended: a run created Scheduled would be started by serve or a worker.
            client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"case_reference": reference, "cycle": 1},
                tags=[f"case:{reference}", "caseconf"],
                idempotency_key=reference.lower(),
                state=Suspended(pause_key=f"{reference}-c1-preparation-0"),
            )
    return time.perf_counter() - began


def cases_bench(cases: int, waiting: int, rest: float) -> None:
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.mailcatcher import MailCatcher
    from tests.prefect_harness import PrefectServer, Serving, Walk, free_port, wait_for

    tmp = Path(tempfile.mkdtemp(prefix="caseconf-bench-load-"))
    _world(tmp)
    mail = MailCatcher("127.0.0.1", free_port(), tmp / "mail").start()
    root = Path(__file__).resolve().parent.parent
    config = tmp / "apprise.yaml"
    config.write_text(
        (root / "config" / "apprise.demo.yaml")
        .read_text()
        .replace("127.0.0.1:2525", f"127.0.0.1:{mail.port}")
    )
    os.environ["CASECONF_APPRISE_CONFIG"] = str(config)
    server = PrefectServer(tmp / "prefect-server")
    server.start()
    serving = Serving(server, tmp / "serve.log")  # type: ignore[arg-type]
    today = datetime.now(ZoneInfo("Europe/Vienna")).date()
    preparation = {
        "conference_type": "security",
        "starts_at": f"{today + timedelta(days=10)}T10:00:00",
        "time_zone": "Europe/Vienna",
        "location": "jva-wien-room-2",
        "acting_representative": "neustart-wien-1",
    }
    waiting_states = {StateType.PAUSED}
    drives: list[tuple[str, int, float, float]] = []
    rests: list[tuple[int, float, float, float, int]] = []
    made = 0.0
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            serving.start()
            assert serving.process is not None and server.process is not None
            pids = (serving.process.pid, server.process.pid)
            idle = len(_run_processes(pids[0]))

            def cpu() -> float:
                return sum(_tree_usage(pid)[0] for pid in pids)

            def runs_at_rest() -> int:
                # A suspended run's process exits a moment after its log says so: settle.
                deadline = time.monotonic() + 60
                while len(_run_processes(pids[0])) > idle and time.monotonic() < deadline:
                    time.sleep(1)
                return len(_run_processes(pids[0]))

            def drive(label: str, n: int) -> None:
                """n referrals at once, each answered to the third form (stakeholders)."""
                began, used = time.perf_counter(), cpu()
                walks = [Walk.refer("neustart-wien") for _ in range(n)]
                for walk in walks:
                    wait_for(walk.run_id, waiting_states, timeout=60 + 10 * n)
                for walk in walks:
                    walk.answer(
                        file_number=f"LOAD-{uuid.uuid4().hex[:8]}",
                        needs=[],
                        acting_representative="neustart-wien-1",
                    )
                for walk in walks:
                    wait_for(walk.run_id, waiting_states, timeout=60 + 10 * n)
                    walk.waits_at("preparation")
                for walk in walks:
                    walk.answer(**preparation)
                for walk in walks:
                    wait_for(walk.run_id, waiting_states, timeout=60 + 10 * n)
                    walk.waits_at("stakeholders")
                seconds, used = time.perf_counter() - began, cpu() - used
                for walk in walks:
                    serving.idle(walk.run_id, timeout=120)
                drives.append((label, n, seconds, used))

            def at_rest(total: int) -> None:
                """CPU and memory of serve and the server over `rest` quiet seconds."""
                runs = runs_at_rest()
                used = cpu()
                time.sleep(rest)
                used = cpu() - used
                serve_mb, server_mb = (_tree_usage(pid)[1] for pid in pids)
                rests.append((total, used, serve_mb, server_mb, runs))

            drive("warm-up", 1)  # the forkserver's first run and the server's caches
            drives.clear()
            drive("one alone", 1)
            drive("at once", cases)
            at_rest(cases + 1)
            if waiting > cases + 1:
                made = make_waiting(waiting - cases - 1, "REST")
                at_rest(waiting)
                drive(f"one, with {waiting} waiting", 1)
    finally:
        serving.stop()
        server.stop()
        mail.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"bench load cases: {cases} cases at once against one alone, then {waiting} waiting "
        "(serve limit 8, warm start; CPU is serve's and the Prefect server's, with their "
        "children)"
    )
    print("| referrals | cases | to the third form s | per case s | CPU s | CPU s per case |")
    print("|---|---|---|---|---|---|")
    for label, n, seconds, used in drives:
        print(
            f"| {label} | {n} | {seconds:.1f} | {seconds / n:.2f} | {used:.1f} | {used / n:.2f} |"
        )
    print()
    print("| waiting cases | flow-run processes | CPU over the rest | serve MB | server MB |")
    print("|---|---|---|---|---|")
    for total, used, serve_mb, server_mb, runs in rests:
        print(
            f"| {total} | {runs} (idle serve: {idle}) | {100 * used / rest:.1f} % of a core "
            f"over {rest:.0f} s | {serve_mb:.0f} | {server_mb:.0f} |"
        )
    if made:
        print(
            f"\n({waiting - cases - 1} of the waiting runs made through the API in {made:.0f} s.)"
        )
    one, many = drives[0], drives[1]
    print(
        f"bench load cases: per-case ratio {cases} at once vs one: {many[2] / cases / one[2]:.2f}"
    )
    if len(drives) > 2:
        print(
            f"bench load cases: one case with {waiting} waiting vs alone: "
            f"{drives[2][2] / one[2]:.2f}"
        )


def main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench load")
    parser.add_argument("what", choices=["sweep", "cases"])
    parser.add_argument("--cases", type=int, default=None)
    parser.add_argument(
        "--waiting", type=int, default=1000, help="cases: waiting runs at rest (default 1000)"
    )
    parser.add_argument(
        "--rest", type=float, default=30, help="cases: quiet seconds measured (default 30)"
    )
    options = parser.parse_args(args)
    if options.what == "sweep":
        sweep_bench(options.cases or 1000)
    else:
        cases_bench(options.cases or 200, options.waiting, options.rest)
