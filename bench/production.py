"""Production topology against `serve` (issue 11), in one execution.

1. Resume to next form: the compose stack run natively (tests/compose_native.py: two API
   replicas, services, two process workers, Caddy when installed, PostgreSQL and Redis on
   loopback) against `python -m deployments serve` on a Prefect server of its own (as `make run`,
   SQLite). Cases are walked side by side, alternating, through referral, preparation,
   stakeholders and information; each resume is timed from `resume_flow_run` (through the proxy
   for the stack) to the run waiting at the next form. Ratio: median stack / median serve.
2. At rest with 1,000 waiting cases: 1,000 runs of `case-review/review` made to wait (Suspended,
   as a case at a form; made through the API, not walked: a walk is seconds per step) and the
   services', replicas' and workers' CPU and memory over a quiet minute, and the flow-run
   processes the workers hold (none expected).

Run: `python -m bench production [--rounds N] [--waiting N] [--rest SECONDS]
[--worker-poll S] [--serve-poll S]`. Needs PostgreSQL and Redis on 127.0.0.1. Exits non-zero only
on errors, never on a slow ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

REP = "neustart-wien-1"


def _answers(began: datetime, number: str) -> list[dict[str, Any]]:
    return [
        {"file_number": number, "needs": ["mental_health"], "acting_representative": REP},
        {
            "conference_type": "security",
            "starts_at": datetime.combine(began.date() + timedelta(days=10), clock(10)).isoformat(),
            "time_zone": "Europe/Vienna",
            "location": "jva-wien-room-2",
            "acting_representative": REP,
        },
        {"acting_representative": REP},
        {
            "contributions": [
                {"agency": "jva-wien", "classification": "professional", "summary": "Stable."}
            ],
            "acting_representative": REP,
        },
    ]


def _timed_resume(walk: Any, answer: dict[str, Any]) -> float:
    """Seconds from the resume to the run waiting at its next form (schema saved)."""
    before = walk.pause_key()
    walk._form_input("schema")
    started = time.monotonic()
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(walk.run_id, run_input=answer)
    deadline = started + 180
    while time.monotonic() < deadline:
        key = walk.pause_key()
        if key and key != before:
            walk._form_input("schema")
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"run {walk.run_id} did not reach its next form")


def _usage(pids: dict[str, int]) -> dict[str, tuple[float, int]]:
    from tests.compose_native import process_usage

    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            out[name] = process_usage(pid)
    return out


def _tree_usage(pid: int) -> tuple[float, int]:
    from tests.compose_native import descendants, process_usage

    cpu, rss = 0.0, 0
    for p in [pid, *descendants(pid)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            c, r = process_usage(p)
            cpu, rss = cpu + c, rss + r
    return cpu, rss


def _make_waiting(up: Any, count: int) -> float:
    """`count` review runs waiting at a form, through the API; returns seconds taken."""
    from bench.load import make_waiting

    with up.api_settings(up.api_urls[0]):
        return make_waiting(count, "REST")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench production")
    parser.add_argument("--rounds", type=int, default=3, help="cases walked on each side")
    parser.add_argument("--waiting", type=int, default=1000, help="waiting runs at rest")
    parser.add_argument("--rest", type=float, default=60, help="seconds measured at rest")
    parser.add_argument("--worker-poll", type=float, default=5, help="compose: 5 s")
    parser.add_argument("--serve-poll", type=float, default=2, help="make run: 2 s")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="caseconf-bench-production-"))
    database = f"sqlite:///{folder / 'serve-caseconf.db'}"
    os.environ["CASECONF_DATABASE_URL"] = database  # the serve side's record (make run: SQLite)
    os.environ["PREFECT_HOME"] = str(folder / "client-home")

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.mailcatcher import ChatCatcher, MailCatcher, free_port
    from models.config.directory import load_directory
    from models.record.agencies import sync_directory
    from models.record.database import migrate, session_scope
    from tests.compose_native import descendants, native_stack
    from tests.prefect_harness import PrefectServer, Serving, Walk

    mail = MailCatcher("127.0.0.1", free_port(), folder / "mail").start()
    chat = ChatCatcher("127.0.0.1", free_port()).start()
    apprise = folder / "apprise.yaml"
    demo = (Path(__file__).resolve().parent.parent / "config" / "apprise.demo.yaml").read_text()
    apprise.write_text(
        demo.replace("127.0.0.1:2525", f"127.0.0.1:{mail.port}").replace(
            "127.0.0.1:8765", f"127.0.0.1:{chat.port}"
        )
    )
    os.environ["CASECONF_APPRISE_CONFIG"] = str(apprise)
    migrate(database)
    with session_scope() as session:
        sync_directory(session, load_directory())
    server = PrefectServer(folder / "serve-prefect")
    serving = Serving(server, folder / "serve.log")
    os.environ["PREFECT_RUNNER_POLL_FREQUENCY"] = str(max(1, round(args.serve_poll)))
    os.environ["CASECONF_SERVE_POLL_SECONDS"] = str(args.serve_poll)
    began = datetime.now()
    times: dict[str, list[float]] = {"serve": [], "workers": []}
    try:
        server.start()
        serving.start()
        with contextlib.contextmanager(native_stack)(
            folder / "stack",
            mail_port=mail.port,
            chat_port=chat.port,
            redis_dbs=(12, 13),
            worker_query_seconds=round(args.worker_poll),
        ) as up:
            stack_api = up.proxy_url or up.api_urls[0]
            print(f"bench production: stack up; clients through {stack_api}", flush=True)
            sides = {  # a fresh settings context each time: one cannot be entered twice
                "serve": lambda: temporary_settings(updates={PREFECT_API_URL: server.api_url}),
                "workers": lambda: up.api_settings(stack_api),
            }
            for round_ in range(args.rounds):
                walks = {}
                for side, settings in sides.items():
                    with settings():
                        walks[side] = Walk.refer("neustart-wien", stage="custody")
                        walks[side].settle()
                for number, answer in enumerate(_answers(began, f"B-{round_}")):
                    order = (
                        ["serve", "workers"] if (round_ + number) % 2 == 0 else ["workers", "serve"]
                    )
                    for side in order:
                        with sides[side]():
                            answer = dict(answer)
                            if "file_number" in answer:
                                answer["file_number"] = f"{side}-{round_}"
                            times[side].append(_timed_resume(walks[side], answer))
                print(f"bench production: round {round_ + 1} of {args.rounds} done", flush=True)
            serving.stop()
            server.stop()

            made = _make_waiting(up, args.waiting)
            print(f"bench production: {args.waiting} waiting runs made in {made:.0f} s", flush=True)
            time.sleep(10)  # let the writes settle before measuring rest
            names = ["prefect-api-1", "prefect-api-2", "prefect-services", "worker-1", "worker-2"]
            if "proxy" in up.stack.processes:
                names.append("proxy")
            pids = {n: up.stack.processes[n].pid for n in names}
            before = {n: _tree_usage(p) for n, p in pids.items()}
            time.sleep(args.rest)
            after = {n: _tree_usage(p) for n, p in pids.items()}
            flow_processes = sum(
                len(descendants(up.stack.processes[w].pid)) for w in ("worker-1", "worker-2")
            )
    finally:
        serving.stop()
        server.stop()
        chat.stop()
        mail.stop()

    serve_median = statistics.median(times["serve"])
    worker_median = statistics.median(times["workers"])
    print()
    print("resume to next form (s)    median   min    max    n")
    for side in ("serve", "workers"):
        values = times[side]
        print(
            f"  {side:<24} {statistics.median(values):6.2f} {min(values):6.2f} "
            f"{max(values):6.2f} {len(values):4d}"
        )
    print(
        f"  ratio workers/serve: {worker_median / serve_median:.2f} (goal at most 1.5; "
        f"worker poll {args.worker_poll:g} s, serve poll {args.serve_poll:g} s)"
    )
    print()
    print(f"at rest with {args.waiting} waiting runs, over {args.rest:g} s:")
    print("  service              CPU %   RSS MiB (with children)")
    for name in pids:
        cpu = (after[name][0] - before[name][0]) / args.rest * 100
        print(f"  {name:<20} {cpu:6.2f}  {after[name][1] / 2**20:8.1f}")
    print(f"  flow-run processes held by the workers: {flow_processes}")


if __name__ == "__main__":
    main()
