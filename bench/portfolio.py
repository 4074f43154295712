"""The portfolio report at 100 cases and at 10,000 (issue 12): well below linear.

One execution writes two SQLite databases straight (bulk inserts, the demo directory): 100 and
10,000 cases spread over two years, at every step, each with conferences, participants, actions,
reviews, messages, stage moves and consent records, then the summaries the ORM listeners keep
on every write (`rebuild_summaries`, as migration 0009 does for existing rows). It then builds
the whole report (`models.reporting.portfolio_report.build_report`: every artifact's Markdown) on each,
alternately, and prints the median times and their ratio (goal: at most 3). Publishing the
artifacts to Prefect costs the same at any size and is left out. Exits non-zero only on errors,
never on the ratio.

Run: `python -m bench portfolio [--rounds N] [--small 100] [--large 10000]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlmodel import SQLModel, create_engine, select

from models.config.directory import load_directory
from models.record.agencies import sync_directory
from models.record.database import RecordSession
from models.record.summaries import rebuild_summaries
from models.record.tables import (
    ActionItem,
    Agency,
    Case,
    Conference,
    ConsentRecord,
    Notification,
    Participant,
    Representative,
    Review,
    StageChange,
)
from models.reporting.portfolio_report import build_report

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
PHASES = ["preparation", "stakeholders", "information", "decision", "review_scheduled"]
STAGES = ["pre_trial", "custody", "pre_release", "post_release"]
LATE = {"preparation": 7, "stakeholders": 3, "information": 14, "decision": 7}


def generate(url: str, cases: int, seed: int = 12) -> None:
    """`cases` cases written straight into a fresh database at `url`."""
    engine = create_engine(url)
    SQLModel.metadata.create_all(engine)
    rng = random.Random(seed)
    with RecordSession(engine) as session:
        sync_directory(session, load_directory())
        session.commit()
        agencies = list(session.exec(select(Agency.id)))
        reps = list(session.exec(select(Representative.id, Representative.agency_id)))
    by_agency: dict[int, list[int]] = {}
    for rep, agency in reps:
        by_agency.setdefault(agency, []).append(rep)
    rows: dict[type, list[dict[str, Any]]] = {
        t: []
        for t in (
            Case,
            Conference,
            Participant,
            ActionItem,
            Review,
            Notification,
            StageChange,
            ConsentRecord,
        )
    }
    conference_id = 0
    for n in range(1, cases + 1):
        created = NOW - timedelta(days=rng.uniform(1, 730))
        closed = rng.random() < 0.2
        phase = "closed" if closed else rng.choice(PHASES)
        stage = "closed" if closed else rng.choice(STAGES)
        referrer = rng.choice(agencies)
        rows[Case].append(
            {
                "id": n,
                "reference": f"CASE-2026-{n:05d}",
                "referring_agency_id": referrer,
                "referral_file_number": f"F-{n}",
                "profile": rng.choice(["generic", "austria-neustart", "catalonia", "gone"]),
                "stage": stage,
                "status": "closed" if closed else "open",
                "needs": [],
                "conference_type": rng.choice(["security", "social_network", None]),
                "phase": phase,
                "cycle": 2,
                "created_at": created,
                "updated_at": created + (NOW - created) * rng.random(),
                "closed_at": NOW - timedelta(days=rng.uniform(0, 300)) if closed else None,
                "closure_reason": "plan_completed" if closed else None,
            }
        )
        rows[StageChange].append(
            {
                "case_id": n,
                "kind": "move",
                "from_stage": "pre_trial",
                "to_stage": "custody",
                "reason": "sentenced",
                "at": created + timedelta(days=20),
            }
        )
        rows[ConsentRecord].append(
            {
                "case_id": n,
                "scope": "social_network_conference",
                "decision": rng.choice(["granted", "refused", "withdrawn"]),
                "recorded_by_id": reps[0][0],
                "recorded_at": created + timedelta(days=3),
            }
        )
        for cycle in (1, 2):
            conference_id += 1
            starts = created + timedelta(days=14 + 90 * (cycle - 1))
            rows[Conference].append(
                {
                    "id": conference_id,
                    "case_id": n,
                    "cycle": cycle,
                    "kind": "first" if cycle == 1 else "review",
                    "conference_type": "security",
                    "starts_at": starts,
                    "ical_uid": f"{n}-{cycle}",
                    "phase": "release",
                    "created_at": starts - timedelta(days=7),
                    "released_at": starts if starts < NOW else None,
                }
            )
            for role in ("lead", "coordinator", "core"):
                agency = rng.choice(agencies)
                rows[Participant].append(
                    {
                        "conference_id": conference_id,
                        "agency_id": agency,
                        "representative_id": rng.choice(by_agency.get(agency, [None])),
                        "role": role,
                        "rule": "bench",
                    }
                )
            rows[ActionItem].append(
                {
                    "case_id": n,
                    "conference_id": conference_id,
                    "owner_agency_id": rng.choice(agencies),
                    "description": "bench",
                    "due_on": (starts + timedelta(days=rng.uniform(10, 60))).date(),
                    "status": rng.choice(["open", "done", "open"]),
                }
            )
        rows[Review].append(
            {
                "case_id": n,
                "cycle": 3,
                "due_at": NOW + timedelta(days=rng.uniform(-20, 60)),
                "idempotency_key": f"{n}/review/c3/v1",
                "status": "scheduled",
            }
        )
        rows[Notification].append(
            {
                "key": f"{n}/invitation",
                "case_id": n,
                "event": "invitation",
                "recipient_agency_id": rng.choice(agencies),
                "recipient_role": "core",
                "channel": "neustart-wien",
                "detail": {},
                "status": rng.choice(["sent", "sent", "failed"]),
                "attempts": rng.choice([1, 1, 2]),
                "created_at": NOW - timedelta(days=rng.uniform(0, 60)),
            }
        )
    with RecordSession(engine) as session:
        for table, values in rows.items():
            if values:
                session.execute(insert(table), values)
        # Written around the ORM, as by a migration: the summaries its listeners keep on every
        # write are computed once here, as migration 0009 does for existing rows.
        rebuild_summaries(session)
        session.commit()
    engine.dispose()


def measure(url: str) -> float:
    engine = create_engine(url)
    with RecordSession(engine) as session:
        started = time.perf_counter()
        build_report(
            session, now=NOW, known_profiles={"generic", "catalonia"}, late_after_days=LATE
        )
        took = time.perf_counter() - started
    engine.dispose()
    return took


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench portfolio")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="caseconf-bench-portfolio-") as folder:
        urls = {}
        for size in (args.small, args.large):
            urls[size] = f"sqlite:///{Path(folder) / f'cases-{size}.db'}"
            started = time.perf_counter()
            generate(urls[size], size)
            print(f"generated {size} cases in {time.perf_counter() - started:.1f} s")
        times: dict[int, list[float]] = {args.small: [], args.large: []}
        for size in urls:
            measure(urls[size])  # warm up: imports, the first connection
        for _ in range(args.rounds):
            for size in urls:
                times[size].append(measure(urls[size]))
    small, large = (statistics.median(times[s]) for s in (args.small, args.large))
    print(f"report at {args.small} cases: {small * 1000:.1f} ms (median of {args.rounds})")
    print(f"report at {args.large} cases: {large * 1000:.1f} ms (median of {args.rounds})")
    print(f"ratio {args.large}/{args.small}: {large / small:.2f} (goal: at most 3)")


if __name__ == "__main__":
    main()
