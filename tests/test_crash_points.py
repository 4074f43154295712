"""A fast subset of the crash injection (`make faults` runs every boundary of both conference
types): the flow-run process is killed with SIGKILL at a few task boundaries of a security
cycle, an operator runs `python -m deployments recover`, and the cycle ends with exactly what a
crash-free walk leaves: no row, outbox entry or message lost or doubled."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import HookedServer, baseline_walk, inject, walk_day
from tests.prefect_harness import Serving

pytestmark = pytest.mark.flow

#: Invitations queued but not yet sent; a decision committed but the flow not yet told.
POINTS = ("after:invite", "after:record_decision")


@pytest.fixture
def hooked(serving: Serving, prefect_server, tmp_path: Path) -> Iterator[Path]:
    """The session's serving process, restarted with the crash hook for this test."""
    faults_dir = tmp_path / "faults"
    faults_dir.mkdir()
    serving.stop()
    with_hook = Serving(HookedServer(prefect_server, faults_dir), serving.log_path)  # type: ignore[arg-type]
    with_hook.start()
    try:
        yield faults_dir
    finally:
        with_hook.stop()
        serving.start()


def test_a_security_cycle_killed_at_task_boundaries_loses_and_doubles_nothing(
    hooked: Path, database: str, mail
) -> None:
    today = walk_day()
    baseline, points = baseline_walk(
        "security", faults_dir=hooked, database=database, today=today, mail=mail
    )
    assert baseline.state["outbox"] and baseline.state["messages"]
    chosen = [p for p in points if p in POINTS]
    assert len(chosen) == len(POINTS), points
    for point in chosen:
        result = inject(
            "security",
            point,
            faults_dir=hooked,
            baseline=baseline,
            database=database,
            today=today,
            mail=mail,
        )
        assert result.reached, point
        assert result.walked.crashes >= 1 and result.walked.recoveries >= 1, point
        assert result.compared.lost == 0, (point, result.compared.detail)
        assert result.compared.duplicated == 0, (point, result.compared.detail)
