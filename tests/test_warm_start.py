"""Runs under `serve` start warm: forked from the forkserver `serve` keeps (deployments/warm_start.py),
not from a fresh interpreter that imports Prefect and caseconf again. The cold path
(`CASECONF_WARM_START=false`) serves without the warm start's Prefect internals."""

from pathlib import Path

import pytest

from tests.prefect_harness import Serving, Walk

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


class _Sabotaged:
    """The session's Prefect server as a serving process sees it, with `extra` in its
    environment and a `sitecustomize` that takes from Prefect the internal the warm start needs
    first (`prefect.flow_engine.multiprocessing`), as a Prefect that renamed it would."""

    def __init__(self, server: object, folder: Path, **extra: str) -> None:
        self.server, self.extra = server, extra
        self.api_url, self.home = server.api_url, server.home  # type: ignore[attr-defined]
        (folder / "sitecustomize.py").write_text(
            "import prefect.flow_engine\ndel prefect.flow_engine.multiprocessing\n"
        )
        self.folder = folder

    def env(self) -> dict[str, str]:
        env = self.server.env()  # type: ignore[attr-defined]
        return {**env, **self.extra, "PYTHONPATH": f"{self.folder}:{env.get('PYTHONPATH', '')}"}


def test_the_cold_path_serves_without_the_warm_starts_internals_and_the_warm_one_says_why(
    serving, prefect_server, tmp_path: Path
) -> None:
    """`CASECONF_WARM_START=false` serves as `prefect.serve` does and needs none of the Prefect
    internals the warm start uses: with one of them gone, a case still walks. With the warm start
    on, `serve` stops at once and names the internal."""
    serving.stop()
    try:
        warm = Serving(_Sabotaged(prefect_server, tmp_path), tmp_path / "warm.log")  # type: ignore[arg-type]
        with pytest.raises(RuntimeError, match="serve exited"):
            warm.start()
        said = (tmp_path / "warm.log").read_text(errors="replace")
        assert "caseconf: refused: Prefect" in said
        assert "has no prefect.flow_engine.multiprocessing" in said

        cold = Serving(
            _Sabotaged(prefect_server, tmp_path, CASECONF_WARM_START="false"),  # type: ignore[arg-type]
            tmp_path / "cold.log",
        )
        cold.start()
        try:
            walk = Walk.refer()
            walk.waits_at("referral")
            walk.answer(file_number="COLD-1", acting_representative=REP)
            walk.waits_at("preparation")
            assert cold.process is not None
            assert not [c for c in children(cold.process.pid) if "forkserver" in command_of(c)]
        finally:
            cold.stop()
    finally:
        serving.start()
