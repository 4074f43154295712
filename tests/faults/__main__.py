"""`make faults`: inject every fault, fuzz the forms, write docs/reliability.md.

    python -m tests.faults [--kinds security social_network] [--limit N] [--fuzz-examples N]
                           [--jobs N] [--load-cases N] [--load-waiting N] [--no-load]

Starts its own world (SQLite database, Prefect server, SMTP catcher, chat receiver, serving
process with the crash hook), walks a crash-free cycle of each conference type, then one cycle
per task boundary with a SIGKILL there (`tests/faults/harness.py`); runs the form fuzzing with
more examples (`tests/test_fuzz_forms.py`) and the hostile answers through the real API
(`tests/test_hostile_api.py`); then the load benches (`bench/load.py`: the sweep over 1,000 open
cases, 200 cases driven at once, 1,000 waiting), whose tables go into the report. With
`--jobs 2` (the default) the two conference types' crashes run at the same time, each in a world
of its own (a child `python -m tests.faults`). Its last line:

    faults: <N> injected, <L> lost, <D> duplicated effects, <R> duplicate deliveries,
    <F> fuzzed answers, <U> unclear refusals, <K> leaks
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
REPORT = ROOT / "docs" / "reliability.md"


def _world(tmp: Path) -> None:
    """Settings for everything this process and its children start (before models is read)."""
    os.environ["CASECONF_DATABASE_URL"] = f"sqlite:///{tmp / 'caseconf.db'}"
    os.environ["PREFECT_HOME"] = str(tmp / "prefect")
    os.environ["CASECONF_DELIVERY_RETRIES"] = "1"
    os.environ["CASECONF_DELIVERY_RETRY_DELAY"] = "0.2"
    os.environ.pop("CASECONF_TEST_DATABASE_URL", None)


def spread(points: list[str], limit: int | None) -> list[str]:
    """All boundaries, or `limit` of them spread evenly over the cycle."""
    if limit is None or limit >= len(points):
        return points
    step = len(points) / limit
    # Boundaries alternate before/after: take both kinds, not every other one of a kind.
    return [points[min(len(points) - 1, int(i * step) + i % 2)] for i in range(limit)]


def run_crashes(tmp: Path, kinds: list[str], limit: int | None) -> tuple[list, dict[str, int]]:
    from deployments.mailcatcher import ChatCatcher, MailCatcher
    from models.config.directory import load_directory
    from models.record.agencies import sync_directory
    from models.record.database import migrate, session_scope
    from tests.faults.harness import HookedServer, baseline_walk, inject, walk_day
    from tests.prefect_harness import PrefectServer, Serving, free_port

    database = os.environ["CASECONF_DATABASE_URL"]
    migrate(database)
    with session_scope(database) as session:
        sync_directory(session, load_directory())
    mail = MailCatcher("127.0.0.1", free_port(), tmp / "mail").start()
    chat = ChatCatcher("127.0.0.1", free_port()).start()
    demo = (ROOT / "config" / "apprise.demo.yaml").read_text()
    config = tmp / "apprise.yaml"
    config.write_text(
        demo.replace("127.0.0.1:2525", f"127.0.0.1:{mail.port}").replace(
            "127.0.0.1:8765", f"127.0.0.1:{chat.port}"
        )
    )
    os.environ["CASECONF_APPRISE_CONFIG"] = str(config)
    server = PrefectServer(tmp / "prefect-server")
    server.start()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = server.api_url
    api = temporary_settings(updates={PREFECT_API_URL: server.api_url})
    api.__enter__()  # prefect read its settings at import: this process must be told too
    faults_dir = tmp / "faults"
    faults_dir.mkdir()
    serving = Serving(HookedServer(server, faults_dir), tmp / "serve.log")  # type: ignore[arg-type]
    serving.start()
    results = []
    boundaries: dict[str, int] = {}
    try:
        today = walk_day()
        for kind in kinds:
            baseline, points = baseline_walk(
                kind, faults_dir=faults_dir, database=database, today=today, mail=mail, chat=chat
            )
            print(
                f"faults: {kind}: crash-free walk in {baseline.seconds:.0f} s, {len(points)} boundaries"
            )
            boundaries[kind] = len(points)
            for point in spread(points, limit):
                result = inject(
                    kind,
                    point,
                    faults_dir=faults_dir,
                    baseline=baseline,
                    database=database,
                    today=today,
                    mail=mail,
                    chat=chat,
                )
                c = result.compared
                print(
                    f"faults: {kind} {point}: reached={result.reached} crashes={result.walked.crashes} "
                    f"lost={c.lost} duplicated={c.duplicated} copies={c.duplicate_deliveries} "
                    f"({result.walked.seconds:.0f} s)",
                    flush=True,
                )
                for line in c.detail:
                    print(f"    {line}")
                results.append(result)
    finally:
        api.__exit__(None, None, None)
        serving.stop()
        server.stop()
        mail.stop()
        chat.stop()
    return results, boundaries


def run_pytest(tmp: Path, tests: list[str], **env: str) -> tuple[int, Counter[str]]:
    """Run tests in a child pytest (its own conftest world); returns exit code and counts."""
    report = tmp / "fuzz.jsonl"
    report.unlink(missing_ok=True)
    child = {k: v for k, v in os.environ.items() if not k.startswith(("CASECONF_", "PREFECT_"))}
    child.update(env, CASECONF_FAULTS_REPORT=str(report))
    code = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "0", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=child,
    ).returncode
    counts: Counter[str] = Counter()
    if report.exists():
        for line in report.read_text().splitlines():
            counts.update(json.loads(line).get("fuzz", {}))
    return code, counts


def run_load(cases: int, waiting: int) -> list[str]:
    """The load benches' output as report lines (a blank line around each table)."""
    child = {k: v for k, v in os.environ.items() if not k.startswith(("CASECONF_", "PREFECT_"))}
    lines: list[str] = []
    for what in (
        ["sweep", "--cases", "1000"],
        ["cases", "--cases", str(cases), "--waiting", str(waiting)],
    ):
        command = [sys.executable, "-m", "bench", "load", *what]
        print(f"faults: {' '.join(command[1:])}", flush=True)
        done = subprocess.run(command, cwd=ROOT, env=child, capture_output=True, text=True)
        print(done.stdout, flush=True)
        lines += ["", f"`python -m bench load {' '.join(what)}`:", ""]
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-4000:])
            lines.append(f"FAILED (exit code {done.returncode}); see the output of `make faults`.")
            continue
        for line in done.stdout.strip().splitlines():
            if lines[-1] and line and lines[-1].startswith("|") != line.startswith("|"):
                lines.append("")
            if line or lines[-1]:
                lines.append(line)
    return lines


#: Faults injected by tests of their own (each asserts nothing lost, nothing doubled):
#: (what, the pytest arguments, how many faults one pass injects).
SCENARIOS = [
    (
        "Prefect server SIGKILLed mid-step by the case's run, back 5 s later (security cycle)",
        ["tests/test_crash_points.py", "-k", "prefect_server"],
        1,
    ),
    (
        "PostgreSQL (own cluster, pg_ctl) restarted before a step's commit, after it, before a check",
        ["tests/test_postgres_restart.py"],
        3,
    ),
    (
        "SMTP refusing and the chat webhook answering 500 across a sweep, then back",
        ["tests/test_channel_outage.py"],
        1,
    ),
]


def commit() -> str:
    """The commit under test (CASECONF_FAULTS_COMMIT when run from an export of it)."""
    if os.environ.get("CASECONF_FAULTS_COMMIT"):
        return os.environ["CASECONF_FAULTS_COMMIT"]
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def write_report(
    results: list,
    boundaries: dict[str, int],
    scenarios: list[tuple[str, int, bool]],
    fuzz: Counter[str],
    api_code: int,
    load: list[str],
    seconds: float,
) -> str:
    injected = len(results) + sum(n for _, n, _ in scenarios)
    # A scenario whose test failed counts as one loss: it asserts nothing lost or doubled.
    lost = sum(r.compared.lost for r in results) + sum(not ok for _, _, ok in scenarios)
    duplicated = sum(r.compared.duplicated for r in results)
    copies = sum(r.compared.duplicate_deliveries for r in results)
    unreached = [f"{r.kind} {r.point}" for r in results if not r.reached]
    fuzzed, unclear, leaks = fuzz["answers"], fuzz["unclear"], fuzz["leaks"]
    unclear += int(api_code != 0)
    last = (
        f"faults: {injected} injected, {lost} lost, {duplicated} duplicated effects, "
        f"{copies} duplicate deliveries, {fuzzed} fuzzed answers, {unclear} unclear refusals, "
        f"{leaks} leaks"
    )
    by_kind: dict[str, list] = {}
    for r in results:
        by_kind.setdefault(r.kind, []).append(r)
    lines = [
        "# Reliability: faults injected and what they cost",
        "",
        f"Written by `make faults` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit "
        f"`{commit()}`, in {seconds / 60:.0f} minutes. Do not edit by hand: run `make faults`.",
        "",
        "## What is injected",
        "",
        "- **Crash at a task boundary**: the flow-run process of a case kills itself with",
        "  SIGKILL before or after a task run (`tests/faults/sitecustomize.py`, on the serving",
        "  process's PYTHONPATH only in the harness; production code is unchanged): every",
        "  task run of the crash-free walk, called, submitted or mapped (each message's",
        "  delivery), each in a walk of its own; `point#n` is the n-th time the walk passed",
        "  that point. The runner",
        "  marks the run Crashed; the operator runs `python -m deployments recover`, or refers",
        "  the person again when the run died before the case existed. The cycle is then",
        "  finished and what it left (conference, participants, information, plan, actions,",
        "  consent, audit, reviews, outbox, messages received by the SMTP catcher and the chat",
        "  receiver) is compared with a crash-free walk of the same conference type.",
        "- **Hostile answers** to every form and deployment parameter, drawn from the stored",
        "  form schemas (hypothesis-jsonschema) and hand-picked strings (`tests/fuzz.py`),",
        "  judged as the server, the form's model and the rule that applies it meet them; and",
        "  a smaller set through the real API (`tests/test_hostile_api.py`).",
        "",
        "Lost: a row, outbox entry or message of the crash-free walk missing. Duplicated effect:",
        "one there more often. Duplicate delivery: the same message (one Message-ID, or for a",
        "chat message one Idempotency-Key, derived from its outbox key) received again: delivery",
        "is at least once, the copy recognisable.",
        "",
        "## Crashes",
        "",
        "| conference type | boundaries | injected | reached | lost | duplicated | duplicate deliveries | crashes | recoveries | re-referrals |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows in by_kind.items():
        lines.append(
            f"| {kind} | {boundaries.get(kind, 0)} | {len(rows)} | "
            f"{sum(r.reached for r in rows)} | {sum(r.compared.lost for r in rows)} | "
            f"{sum(r.compared.duplicated for r in rows)} | "
            f"{sum(r.compared.duplicate_deliveries for r in rows)} | "
            f"{sum(r.walked.crashes for r in rows)} | {sum(r.walked.recoveries for r in rows)} | "
            f"{sum(r.walked.referred_again for r in rows)} |"
        )
    lines += [
        "",
        "| boundary | type | lost | duplicated | duplicate deliveries | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| `{r.point}` | {r.kind} | {r.compared.lost} | {r.compared.duplicated} | "
            f"{r.compared.duplicate_deliveries} | {r.walked.seconds:.0f} |"
        )
    problems = [f"- {r.kind} `{r.point}`: {d}" for r in results for d in r.compared.detail]
    if unreached:
        problems += [f"- not reached (the walk never passed it again): {p}" for p in unreached]
    lines += [
        "",
        "## Other faults",
        "",
        "| fault | injected | result |",
        "|---|---|---|",
    ]
    lines += [
        f"| {what} | {n} | {'nothing lost or doubled' if ok else 'FAILED'} |"
        for what, n, ok in scenarios
    ]
    lines += ["", "## Differences from the crash-free walk", ""]
    lines += problems or ["None."]
    lines += [
        "",
        "## Hostile answers",
        "",
        "| answers | accepted | refused by the schema | refused by the form | refused by a rule | unclear refusals | leaks |",
        "|---|---|---|---|---|---|---|",
        f"| {fuzzed} | {fuzz['accepted']} | {fuzz['schema']} | {fuzz['form']} | {fuzz['rule']} | "
        f"{fuzz['unclear']} | {leaks} |",
        "",
        f"Through the real API: {'passed' if api_code == 0 else 'FAILED'}.",
        "",
        "## Load",
        "",
        "The sweep's queueing over 1,000 open cases against 10, per case; cases driven to their",
        "third form all at once against one alone, on the embedded default (`serve`, SQLite);",
        "processes, CPU and memory while cases wait (`bench/load.py`).",
        *(load or ["", "Not run this time (`--no-load`)."]),
        "",
        last,
        "",
    ]
    REPORT.write_text("\n".join(lines))
    return last


def crashes_side_by_side(
    tmp: Path, kinds: list[str], limit: int | None
) -> tuple[list, dict[str, int]]:
    """Each type's crashes in a child `python -m tests.faults` with a world of its own, all at
    once (a walk waits on Prefect much of its time); their results, in the order of `kinds`."""
    children = []
    for kind in kinds:
        out = tmp / f"crashes-{kind}.pickle"
        command = [sys.executable, "-m", "tests.faults", "--kinds", kind, "--crashes-to", str(out)]
        if limit is not None:
            command += ["--limit", str(limit)]
        children.append((kind, out, subprocess.Popen(command, cwd=ROOT)))
    results: list = []
    boundaries: dict[str, int] = {}
    for kind, out, child in children:
        if child.wait() != 0 or not out.exists():
            raise SystemExit(
                f"faults: the {kind} crashes stopped with exit code {child.returncode}"
            )
        kind_results, kind_boundaries = pickle.loads(out.read_bytes())
        results += kind_results
        boundaries.update(kind_boundaries)
    return results, boundaries


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--kinds", nargs="+", default=["security", "social_network"])
    parser.add_argument(
        "--limit", type=int, default=None, help="boundaries per type, spread (default: all)"
    )
    parser.add_argument("--fuzz-examples", type=int, default=100)
    parser.add_argument(
        "--jobs", type=int, default=2, help="conference types crashed at once (default 2)"
    )
    parser.add_argument("--load-cases", type=int, default=200, help="cases driven at once")
    parser.add_argument("--load-waiting", type=int, default=1000, help="cases waiting at rest")
    parser.add_argument("--no-load", action="store_true", help="skip the load benches")
    parser.add_argument("--crashes-to", type=Path, help=argparse.SUPPRESS)  # a child's results
    args = parser.parse_args()
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="caseconf-faults-"))
    if args.crashes_to:
        _world(tmp)
        args.crashes_to.write_bytes(pickle.dumps(run_crashes(tmp, args.kinds, args.limit)))
        return
    if args.jobs > 1 and len(args.kinds) > 1:
        results, boundaries = crashes_side_by_side(tmp, args.kinds, args.limit)
    else:
        _world(tmp)
        results, boundaries = run_crashes(tmp, args.kinds, args.limit)
    scenarios = []
    for what, arguments, injected in SCENARIOS:
        code, _ = run_pytest(tmp, arguments)
        print(f"faults: {what}: {'passed' if code == 0 else 'FAILED'}", flush=True)
        scenarios.append((what, injected, code == 0))
    _, fuzz = run_pytest(
        tmp, ["tests/test_fuzz_forms.py"], CASECONF_FUZZ_EXAMPLES=str(args.fuzz_examples)
    )
    api_code, _ = run_pytest(tmp, ["tests/test_hostile_api.py"])
    load = [] if args.no_load else run_load(args.load_cases, args.load_waiting)
    last = write_report(
        results, boundaries, scenarios, fuzz, api_code, load, time.monotonic() - began
    )
    print(f"faults: report written to {REPORT.relative_to(ROOT)}")
    print(last)


if __name__ == "__main__":
    main()
