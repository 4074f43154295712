"""What a resume's process spends on imports: this tree against an earlier commit, in one execution.

Every resume starts a fresh flow-run process that imports Prefect's engine and loads the flow
from its entrypoint (`flows/lifecycle.py:case_lifecycle`; `case-review` imports the same cycle).
This bench does exactly that in fresh subprocesses, alternating between the working tree and a
snapshot of `--before` (default: the commit before message, calendar, template and mail
libraries were made lazy), REPEAT times each after one warm-up (which also writes bytecode), and
reports per variant the median of: the whole process (start to exit), Prefect's engine imports,
and loading caseconf's flow modules, also by layer (`LAYERS`); and which of apprise, icalendar,
jinja2, aiosmtpd the process held. Run: `python -m bench imports [--before REV] [--repeat N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "a3dc5f3"  # the last commit that imported them at module level
REPEAT = 15
HEAVY = ("apprise", "icalendar", "jinja2", "aiosmtpd", "models.messaging.mail_plugin")

# Where the flow's load goes, layer by layer, each imported ahead of what needs it: SQLAlchemy
# and sqlmodel; the SQL dialects `models/record/tables.py` makes SQLAlchemy load (a dialect-specific
# keyword such as `postgresql_where` loads that dialect's package); the tables; the steps (their
# forms and rules); and the rest of caseconf with the flow objects themselves.
LAYERS = ("sqlalchemy", "dialects", "tables", "forms", "rest")
PROBE = f"""
import json, sys, time
HEAVY = {HEAVY!r}
t0 = time.perf_counter()
import prefect.engine, prefect.flow_engine
t1 = time.perf_counter()
import sqlalchemy.orm, sqlmodel
t2 = time.perf_counter()
import sqlalchemy.dialects.postgresql, sqlalchemy.dialects.sqlite
t3 = time.perf_counter()
import models.record.tables
t4 = time.perf_counter()
import models.steps.registry
t5 = time.perf_counter()
from prefect.flows import load_flow_from_entrypoint
load_flow_from_entrypoint("flows/lifecycle.py:case_lifecycle")
t6 = time.perf_counter()
print(json.dumps({{
    "prefect": t1 - t0,
    "caseconf": t6 - t1,
    "sqlalchemy": t2 - t1,
    "dialects": t3 - t2,
    "tables": t4 - t3,
    "forms": t5 - t4,
    "rest": t6 - t5,
    "held": [m for m in HEAVY if m in sys.modules],
    "file": sys.modules["flows.cycle"].__file__,
}}))
"""


def snapshot(rev: str, folder: Path) -> Path:
    """The tree at `rev`, exported with `git archive` (the working tree is left alone)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(data)) as archive:
        archive.extractall(folder, filter="data")
    return folder


def probe(tree: Path, home: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PYTHONPATH": str(tree), "PREFECT_HOME": str(home)})
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tree, env=env, check=True, capture_output=True
    )
    result: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    result["process"] = time.perf_counter() - start
    if not str(result["file"]).startswith(str(tree)):
        raise SystemExit(f"bench imports: {tree} loaded flows from {result['file']}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench imports")
    parser.add_argument("--before", default=BEFORE, help=f"commit to compare with ({BEFORE})")
    parser.add_argument("--repeat", type=int, default=REPEAT, help=f"default {REPEAT}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-imports-") as tmp:
        trees = {"before": snapshot(args.before, Path(tmp) / "before"), "now": ROOT}
        home = Path(tmp) / "prefect"
        for tree in trees.values():
            probe(tree, home)  # warm-up: bytecode written, files in the page cache
        samples: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
        for i in range(args.repeat):
            for name in list(trees)[i % 2 :] + list(trees)[: i % 2]:
                samples[name].append(probe(trees[name], home))

    def median(name: str, part: str) -> float:
        return statistics.median(float(s[part]) for s in samples[name])  # type: ignore[arg-type]

    print(
        f"imports: a resume's flow-run process (prefect engine + flows/lifecycle.py), "
        f"median of {args.repeat} fresh processes each (ms)"
    )
    print(f"  {'':<20}{'process':>10}{'prefect':>10}{'caseconf':>10}  holds")
    for name in trees:
        label = f"{name} ({args.before})" if name == "before" else name
        held = ", ".join(samples[name][-1]["held"]) or "none of them"  # type: ignore[arg-type]
        print(
            f"  {label:<20}"
            + "".join(f"{median(name, p) * 1000:10.0f}" for p in ("process", "prefect", "caseconf"))
            + f"  {held}"
        )
    saved = median("before", "process") - median("now", "process")
    print(f"  the caseconf modules by layer (ms): {'':<6}" + "".join(f"{p:>11}" for p in LAYERS))
    for name in trees:
        label = f"{name} ({args.before})" if name == "before" else name
        print(f"  {label:<42}" + "".join(f"{median(name, p) * 1000:11.0f}" for p in LAYERS))
    print(
        f"  saved per resume: {saved * 1000:.0f} ms of the process; ratio now/before: process "
        f"{median('now', 'process') / median('before', 'process'):.2f}, caseconf modules "
        f"{median('now', 'caseconf') / median('before', 'caseconf'):.2f}"
    )


if __name__ == "__main__":
    main()
