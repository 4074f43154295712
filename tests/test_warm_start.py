"""Runs under `serve` start warm: forked from the forkserver `serve` keeps (deployments/warm_start.py),
not from a fresh interpreter that imports Prefect and caseconf again."""

from pathlib import Path

import pytest

from tests.prefect_harness import Walk

pytestmark = [pytest.mark.flow, pytest.mark.database]

REP = "neustart-wien-1"


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def command_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_every_step_of_a_case_runs_in_a_process_forked_from_the_forkserver(serving) -> None:
    walk = Walk.refer()
    walk.waits_at("referral")
    walk.answer(file_number="WS-1", acting_representative=REP)
    walk.waits_at("preparation")

    assert serving.process is not None
    forkservers = [
        c for c in children(serving.process.pid) if "multiprocessing.forkserver" in command_of(c)
    ]
    assert len(forkservers) == 1, [command_of(c) for c in children(serving.process.pid)]
    log = serving.log_path.read_text(errors="replace")
    assert f"Execution of flow run '{walk.run_id}' is paused" in log
