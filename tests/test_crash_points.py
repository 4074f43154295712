"""A fast subset of the crash injection (`make faults` runs every boundary of both conference
types): the flow-run process is killed with SIGKILL at a few task boundaries of a security
cycle, an operator runs `python -m deployments recover`, and the cycle ends with exactly what a
crash-free walk leaves: no row, outbox entry or message lost or doubled. The Prefect server
killed mid-step and started again likewise."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import (
    HookedServer,
    Walked,
    baseline_walk,
    inject,
    inject_server_kill,
    walk_day,
)
from tests.prefect_harness import Serving

pytestmark = pytest.mark.flow

#: Invitations queued but not yet sent, and the first message just delivered, its outbox entry
#: updated, the others not yet sent (make faults covers every other boundary).
POINTS = ("after:invite#1", "after:deliver#1")


@pytest.fixture(scope="module")
def hooked(
    serving: Serving, prefect_server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The session's serving process, restarted with the crash hook for this module."""
    faults_dir = tmp_path_factory.mktemp("faults")
    serving.stop()
    with_hook = Serving(HookedServer(prefect_server, faults_dir), serving.log_path)  # type: ignore[arg-type]
    with_hook.start()
    try:
        yield faults_dir
    finally:
        with_hook.stop()
        serving.start()


@pytest.fixture(scope="module")
def baseline(hooked: Path, database: str, mail) -> tuple[Walked, list[str]]:
    """A crash-free security cycle and the task boundaries it passed."""
    walked, points = baseline_walk(
        "security", faults_dir=hooked, database=database, today=walk_day(), mail=mail
    )
    assert walked.state["outbox"] and walked.state["messages"]
    return walked, points


def test_a_security_cycle_killed_at_task_boundaries_loses_and_doubles_nothing(
    hooked: Path, baseline: tuple[Walked, list[str]], database: str, mail
) -> None:
    today = walk_day()
    walked, points = baseline
    chosen = [p for p in points if p in POINTS]
    assert len(chosen) == len(POINTS), points
    for point in chosen:
        result = inject(
            "security",
            point,
            faults_dir=hooked,
            baseline=walked,
            database=database,
            today=today,
            mail=mail,
        )
        assert result.reached, point
        assert result.walked.crashes >= 1 and result.walked.recoveries >= 1, point
        assert result.compared.lost == 0, (point, result.compared.detail)
        assert result.compared.duplicated == 0, (point, result.compared.detail)


def test_the_prefect_server_killed_mid_step_loses_and_doubles_nothing(
    hooked: Path, baseline: tuple[Walked, list[str]], database: str, mail, prefect_server
) -> None:
    """The case's run kills the Prefect server right after the information step committed;
    the server is back five seconds later on the same port and database."""
    walked, points = baseline
    assert "after:apply-information#1" in points
    result = inject_server_kill(
        "security",
        "after:apply-information#1",
        server=prefect_server,
        faults_dir=hooked,
        baseline=walked,
        database=database,
        today=walk_day(),
        mail=mail,
    )
    assert result.reached
    assert result.compared.lost == 0, result.compared.detail
    assert result.compared.duplicated == 0, result.compared.detail
