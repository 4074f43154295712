"""Every step as fast as the engine allows (issue 14): caseconf against a bare Prefect flow.

One execution starts a Prefect server (temporary folder, SQLite), caseconf's serving process
(`python -m deployments serve`, as bench/history.py does, with loopback mail and chat catchers
and the demo directory) and, beside it on the same server, a serving process for a bare flow
of a case's shape written in bench/bare.py (a referral form, two suspended forms, a review
scheduled as a future run; no work, no caseconf code). Both serving processes get the same
environment (runner poll and all).

In each round, a fresh bare case and a fresh caseconf case (their order alternating) are
walked, and every resume is timed from `resume_flow_run` to the next form's schema saved (what
the UI waits for), with the run's own Running -> Paused time (Prefect's timestamps) and the
task runs the replay created. Bare: referral -> preparation -> stakeholders. caseconf:
referral -> preparation -> stakeholders -> information -> decision.

Prints the medians and the ratio caseconf/bare of the median resume-to-next-form times. Exits
non-zero only on errors, never on a slow ratio. About 40 s to start and a minute a round.
caseconf's runs start warm (deployments/warm_start.py) unless `--cold`; the bare flow's always
start as Prefect's `serve` starts them. Run: `python -m bench steps [--rounds N] [--keep] [--cold]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.history import PROFILE, REP, _answer, _configure, time_resume

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

    from tests.prefect_harness import Serving, Walk

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 5
BARE_STEPS = ("referral", "preparation")  # each followed by a form; stakeholders ends the run
CASECONF_STEPS = ("referral", "preparation", "stakeholders", "information")
NEXT = {
    "referral": "preparation",
    "preparation": "stakeholders",
    "stakeholders": "information",
    "information": "decision",
}


@dataclass(frozen=True)
class Sample:
    flow: str  # "bare" or "caseconf"
    step: str
    total: float  # resume -> next form's schema saved, seconds
    in_run: float  # the run's Running -> Paused, by Prefect's timestamps
    tasks: int  # task runs the replay created


def task_runs(serving: Serving, offset: int) -> int:
    """Task runs finished in the serving process's log since `offset` (its size then).

    Counted from the log: the test server runs without services, so Prefect's API does not
    record task runs (its task-run recorder is a service). Only one run executes at a time here.
    """
    with open(serving.log_path, "rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    return sum(1 for line in text.splitlines() if "Task run '" in line and "Finished in" in line)


def _referral_answer(round_: int) -> dict[str, Any]:
    return {
        "file_number": f"STEPS-{round_}",
        "needs": ["mental_health"],
        "acting_representative": REP,
    }


def _timed(
    client: SyncPrefectClient,
    serving: Serving,
    walk: Walk,
    flow: str,
    step: str,
    answer: dict[str, Any],
) -> Sample:
    walk.waits_at(step)
    serving.idle(walk.run_id)
    offset = serving.log_path.stat().st_size
    total, in_run = time_resume(client, serving, walk, step, answer, NEXT[step])
    serving.idle(walk.run_id)  # the replay's last log lines are written before it leaves
    return Sample(flow, step, total, in_run, task_runs(serving, offset))


def bare_case(client: SyncPrefectClient, serving: Serving, round_: int) -> list[Sample]:
    """A bare case from its referral to its scheduled review; its two resumes to a form timed."""
    from prefect.client.schemas.objects import StateType
    from prefect.deployments import run_deployment

    from tests.prefect_harness import Walk, wait_for

    reference = f"BARE-{round_ + 1:04d}-{uuid.uuid4().hex[:6]}"
    run = run_deployment("bare-case/case", parameters={"reference": reference}, timeout=0)
    walk = Walk(run.id)
    samples = [
        _timed(client, serving, walk, "bare", "referral", _referral_answer(round_)),
        _timed(client, serving, walk, "bare", "preparation", _answer("preparation", None)),
    ]
    walk.waits_at("stakeholders")
    walk.answer(acting_representative=REP)
    done = wait_for(walk.run_id, {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED})
    if done.state is None or done.state.type != StateType.COMPLETED:
        raise RuntimeError(f"bare case {reference} ended {done.state}")
    return samples


def caseconf_case(client: SyncPrefectClient, serving: Serving, round_: int) -> list[Sample]:
    """A caseconf case referred through `case-lifecycle/referral`, walked to its decision form."""
    from tests.prefect_harness import Walk

    walk = Walk.refer("neustart-wien", stage="custody", profile=PROFILE)
    samples = [_timed(client, serving, walk, "caseconf", "referral", _referral_answer(round_))]
    for step in CASECONF_STEPS[1:]:
        samples.append(_timed(client, serving, walk, "caseconf", step, _answer(step, None)))
    return samples


def measure(bare: Serving, caseconf: Serving, rounds: int) -> list[Sample]:
    from prefect.client.orchestration import get_client

    samples: list[Sample] = []
    with get_client(sync_client=True) as client:
        for round_ in range(rounds):
            order = ["bare", "caseconf"] if round_ % 2 == 0 else ["caseconf", "bare"]
            for flow in order:
                if flow == "bare":
                    samples += bare_case(client, bare, round_)
                else:
                    samples += caseconf_case(client, caseconf, round_)
            mine = samples[-len(BARE_STEPS) - len(CASECONF_STEPS) :]
            print(
                f"  round {round_ + 1}/{rounds}: "
                + ", ".join(
                    f"{flow} {statistics.median(s.total for s in mine if s.flow == flow):5.2f} s"
                    for flow in ("bare", "caseconf")
                ),
                flush=True,
            )
    return samples


def report(samples: list[Sample], rounds: int) -> str:
    def med(flow: str, part: str, step: str | None = None) -> float:
        return statistics.median(
            getattr(s, part) for s in samples if s.flow == flow and (step is None or s.step == step)
        )

    lines = [
        f"steps: resume -> next form saved, bare Prefect flow and caseconf on one server "
        f"({rounds} round(s); ms, medians)",
        f"  {'flow':<10}{'step':<14}{'resume->form':>14}{'in the run':>12}"
        f"{'outside':>10}{'task runs':>11}",
    ]
    by_step: dict[str, list[str]] = defaultdict(list)
    for s in samples:
        if s.step not in by_step[s.flow]:
            by_step[s.flow].append(s.step)
    for flow in ("bare", "caseconf"):
        for step in [*by_step[flow], None]:
            total, in_run = med(flow, "total", step), med(flow, "in_run", step)
            lines.append(
                f"  {flow:<10}{step or 'all steps':<14}{total * 1000:14.0f}{in_run * 1000:12.0f}"
                f"{(total - in_run) * 1000:10.0f}{med(flow, 'tasks', step):11.0f}"
            )
    lines.append(
        "  (in the run: the replay, Running -> Paused; outside: the runner's poll, the new "
        "process and its imports, and saving the form)"
    )
    lines.append(
        f"  ratio caseconf/bare, resume -> next form saved: "
        f"{med('caseconf', 'total') / med('bare', 'total'):.2f}"
        f"  (in the run {med('caseconf', 'in_run') / med('bare', 'in_run'):.2f}; "
        "1 = caseconf adds nothing to what Prefect itself takes)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Set everything up, walk, print the table; everything is removed afterwards."""
    parser = argparse.ArgumentParser(prog="python -m bench steps")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"default {ROUNDS}")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="serve caseconf with CASECONF_WARM_START=false: each run imports Prefect and the "
        "flows again, as the bare flow's (Prefect's own serve) does",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    # The serving processes inherit this environment; only caseconf's reads the setting.
    os.environ["CASECONF_WARM_START"] = "false" if args.cold else "true"

    from deployments.mailcatcher import ChatCatcher, MailCatcher, free_port

    folder = Path(tempfile.mkdtemp(prefix="caseconf-bench-steps-"))
    mail = MailCatcher("127.0.0.1", free_port(), folder / "mail")
    chat = ChatCatcher("127.0.0.1", free_port())
    url = _configure(folder, mail.port, chat.port)

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from models.config.directory import load_directory
    from models.record.agencies import sync_directory
    from models.record.database import migrate, session_scope
    from tests.prefect_harness import PrefectServer, Serving

    migrate(url)
    with session_scope() as session:
        sync_directory(session, load_directory())
    server = PrefectServer(folder / "prefect-server")
    caseconf = Serving(server, folder / "serve.log")
    bare = Serving(server, folder / "bare.log", command=(str(ROOT / "bench" / "bare.py"),))
    ok = False
    try:
        mail.start()
        chat.start()
        server.start()
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            caseconf.start()
            bare.start()
            start = "cold, as Prefect's serve" if args.cold else "warm (forkserver)"
            print(f"steps: bare and caseconf ({start}) serving; {args.rounds} round(s)", flush=True)
            samples = measure(bare, caseconf, args.rounds)
        print(report(samples, args.rounds))
        ok = True
    finally:
        bare.stop()
        caseconf.stop()
        server.stop()
        chat.stop()
        mail.stop()
        if ok and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"steps: logs and databases kept in {folder}")


if __name__ == "__main__":
    main()
