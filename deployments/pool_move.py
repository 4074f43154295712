"""Move an installation from `serve` to workers: `python -m deployments move-to-workers`.

Runs created while the deployments were served belong to no work queue, and the API cannot give
a run a queue afterwards: a worker never picks them up, even once `prefect deploy` has put the
same deployments on the `caseconf` pool. So each one is replaced by a new run of the pool's
deployment, the way caseconf already replaces a waiting run (tasks/runs.py
`restart_waiting_run`):

- a case waiting at a form: a new run of its current cycle; it replays the answered steps from the
  ledger (nothing answered is asked again, nothing sent is sent again) and waits at the same form;
- a referral waiting for its first form (no case yet): a new referral run with its parameters;
- a scheduled review: a new run at the same time (the Review row follows it);
- a run that a stop cut off mid-step: brought back as under `serve` (recovery).

Stop `serve` first and register the pool's deployments (the compose `setup` job) before; start
the workers after. Safe to run again: every new run has an idempotency key.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.states import Cancelled
from sqlmodel import select

from deployments.production import POOL
from models.record.database import session_scope
from models.record.tables import Case, Review
from models.vocabulary import CaseStatus, ReviewStatus
from tasks.housekeeping import recover_cases
from tasks.prefect_compat import check_prefect_version
from tasks.runs import REVIEW_DEPLOYMENT, start_cycle_run
from tasks.steps import forget_inputs

logger = logging.getLogger("caseconf.pool_move")

MOVED = "Moved to the caseconf work pool (python -m deployments move-to-workers)"


class NotReady(RuntimeError):
    """The move would strand runs: the pool's deployments are missing, or serve still runs."""


@dataclass
class Moved:
    """What the move did, by kind: (reference or run name, old run id, new run id)."""

    waiting: list[tuple[str, str, str]] = field(default_factory=list)
    referrals: list[tuple[str, str, str]] = field(default_factory=list)
    reviews: list[tuple[str, str, str]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"waiting case {r}: run {old} -> {new}" for r, old, new in self.waiting]
        out += [f"waiting referral {r}: run {old} -> {new}" for r, old, new in self.referrals]
        out += [f"scheduled review {r}: run {old} -> {new}" for r, old, new in self.reviews]
        out += [f"cut-off case {r}: brought back" for r in self.recovered]
        return out


def _run_on_pool(name: str, **options: Any) -> str:
    """A run of the (now pool-backed) deployment `name`; returns its id."""
    made = cast(FlowRun, run_deployment(name, timeout=0, as_subflow=False, **options))
    return str(made.id)


def _served(run: FlowRun) -> bool:
    return run.work_queue_id is None


def _check_ready(client: SyncPrefectClient) -> None:
    review = client.read_deployment_by_name(REVIEW_DEPLOYMENT)
    if review.work_pool_name != POOL:
        raise NotReady(
            f"{REVIEW_DEPLOYMENT} is not on the {POOL!r} work pool yet: run the setup job "
            "(python -m deployments.production setup) first"
        )
    running = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
            )
        )
    )
    if any(_served(r) and r.deployment_id for r in running):
        raise NotReady("a served run is still running: stop `serve` first")


def _replace(client: SyncPrefectClient, old: FlowRun, start: Callable[[], str]) -> str:
    """Start the replacement first, then cancel the old run and forget its form inputs."""
    new = start()
    client.set_flow_run_state(old.id, Cancelled(message=MOVED), force=True)
    forget_inputs(old.id)
    return new


def move_to_workers() -> Moved:
    """Replace every served run that waits (form or schedule) with one on the pool."""
    moved = Moved()
    with get_client(sync_client=True) as client:
        _check_ready(client)
        with session_scope() as session:
            open_cases = [
                (c.id, c.reference, c.cycle, c.stage, c.conference_type, c.current_flow_run_id)
                for c in session.exec(select(Case).where(Case.status == CaseStatus.open))
            ]
            followed = {c[5] for c in open_cases if c[5]}
            reviews = [
                (r.id, r.flow_run_id)
                for r in session.exec(select(Review).where(Review.status == ReviewStatus.scheduled))
                if r.flow_run_id
            ]
        # 1. Cases waiting at a form.
        for case_id, reference, cycle, stage, conference_type, run_id in open_cases:
            if not run_id:
                continue
            old = client.read_flow_run(UUID(run_id))
            if not _served(old) or old.state is None or old.state.type != StateType.PAUSED:
                continue
            start = partial(
                start_cycle_run,
                reference,
                cycle,
                stage,
                conference_type,
                key=f"{reference}-move-{run_id}",
            )
            new = _replace(client, old, start)
            with session_scope() as session:
                case = session.get(Case, case_id)
                assert case is not None
                if case.current_flow_run_id == run_id:
                    case.current_flow_run_id = new
                    session.add(case)
            moved.waiting.append((reference, run_id, new))
        # 2. Scheduled reviews: a new run at the same time, which the Review row then follows.
        for review_id, run_id in reviews:
            old = client.read_flow_run(UUID(run_id))
            if not _served(old) or old.state is None or old.state.type != StateType.SCHEDULED:
                continue
            new = _run_on_pool(
                REVIEW_DEPLOYMENT,
                parameters=old.parameters,
                scheduled_time=old.next_scheduled_start_time or old.expected_start_time,
                flow_run_name=old.name,
                tags=old.tags,
                idempotency_key=f"{old.idempotency_key or run_id}/{POOL}",
            )
            with session_scope() as session:
                row = session.get(Review, review_id)
                assert row is not None
                row.flow_run_id = new  # before the old run is cancelled: the reconciler reads it
                session.add(row)
            client.set_flow_run_state(old.id, Cancelled(message=MOVED), force=True)
            moved.reviews.append((old.name, run_id, new))
        # 3. Referrals still at their first form: no case exists yet, nothing was answered.
        lifecycle = client.read_deployment_by_name("case-lifecycle/referral")
        waiting = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[lifecycle.id])),
        )
        for old in waiting:
            if not _served(old) or str(old.id) in followed:
                continue
            start = partial(
                _run_on_pool,
                "case-lifecycle/referral",
                parameters=old.parameters,
                tags=old.tags,
                idempotency_key=f"referral-move-{old.id}",
            )
            new = _replace(client, old, start)
            moved.referrals.append((old.name, str(old.id), new))
    # 4. Runs the stop of `serve` cut off mid-step: new runs of the pool's deployment.
    moved.recovered = recover_cases()
    return moved


def main() -> int:
    check_prefect_version()
    try:
        moved = move_to_workers()
    except NotReady as reason:
        print(f"caseconf: refused: {reason}")
        return 2
    for line in moved.lines():
        print(f"caseconf: moved {line}")
    total = len(moved.waiting) + len(moved.referrals) + len(moved.reviews) + len(moved.recovered)
    print(f"caseconf: {total} run(s) moved to the {POOL!r} work pool")
    return 0
