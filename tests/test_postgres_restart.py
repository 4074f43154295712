"""PostgreSQL restarted in the middle of a step: the step's retry applies it exactly once.

A PostgreSQL cluster of the test's own (initdb and pg_ctl into a temporary folder, on a free
port; never the machine's shared one) is restarted with `pg_ctl restart -m fast`:

- during a step's write, before its commit: the commit fails, nothing is written; the task's
  retry (DATABASE_RETRIES in tasks/policies.py) applies the answer once;
- after the commit, before the flow hears of it: the retry finds the step in the ledger and
  writes nothing again;
- before a check: the engine's pre-ping replaces the dead connection and the read succeeds.

The steps are `apply_once` itself, bound to this cluster.
"""

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

import tasks.policies as policies
from models.config.directory import load_directory
from models.record import ledger
from models.record.agencies import sync_directory
from models.record.database import migrate, session_scope
from models.record.tables import Case, Effect
from models.rules.cases import refer_case
from models.vocabulary import Need, Stage
from tests.prefect_harness import free_port

NOW = datetime(2034, 2, 1, 9, 0, tzinfo=UTC)


def _pg_bin(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


class Cluster:
    """A throwaway PostgreSQL cluster run as the `postgres` user."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.data = folder / "data"
        self.pg_ctl = _pg_bin("pg_ctl") or "pg_ctl"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/caseconf"

    def _as_postgres(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._as_postgres(
            _pg_bin("initdb") or "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres"
        )
        self._ctl("start")
        self._as_postgres(
            _pg_bin("createdb") or "createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "caseconf",
        )

    def _ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-m",
            "fast",
            "-w",
            action,
        )

    def restart(self) -> None:
        self._ctl("restart")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._ctl("stop")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("runuser is needed to run initdb as postgres")
    own = Cluster(reachable_folder(tmp_path_factory) / "pg")
    own.start()
    try:
        migrate(own.url)
        with session_scope(own.url) as session:
            sync_directory(session, load_directory())
        yield own
    finally:
        own.stop()


def reachable_folder(factory: pytest.TempPathFactory) -> Path:
    """A temporary folder the postgres user can reach."""
    folder = factory.mktemp("cluster")
    folder.chmod(0o755)
    for parent in folder.parents:  # postgres must reach its folder
        if parent == Path("/tmp") or parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)
    return folder


@pytest.fixture
def bound(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """apply_once writing to the cluster (the tasks' sessions use the configured database)."""
    monkeypatch.setattr(policies, "session_scope", partial(session_scope, cluster.url))
    return cluster


def referral(file_number: str, restart: Cluster | None = None):  # type: ignore[no-untyped-def]
    def write(session: Session) -> dict[str, int]:
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number=file_number,
            stage=Stage.custody,
            needs=[Need.housing],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="PGR",
            flow_run_id=None,
            now=NOW,
        )
        if restart is not None:
            restart.restart()  # the server goes away before this step commits
        assert case.id is not None
        return {"case_id": case.id}

    return write


def written(cluster: Cluster, file_number: str, step_key: str) -> tuple[int, int]:
    with session_scope(cluster.url) as s:
        cases = s.exec(select(Case).where(Case.referral_file_number == file_number)).all()
        effects = s.exec(select(Effect).where(Effect.key == step_key)).all()
        return len(cases), len(effects)


def test_a_restart_before_the_commit_leaves_nothing_and_the_retry_applies_once(
    bound: Cluster,
) -> None:
    file_number, step = f"PGR-{uuid.uuid4().hex[:8]}", f"pgr-{uuid.uuid4().hex[:8]}-referral"
    with pytest.raises(DBAPIError):
        policies.apply_once(
            step_key=step, case_id=None, attempt=0, write=referral(file_number, restart=bound)
        )
    assert written(bound, file_number, step) == (0, 0)
    retried = policies.apply_once(
        step_key=step, case_id=None, attempt=0, write=referral(file_number)
    )
    assert retried.result is not None
    assert written(bound, file_number, step) == (1, 1)


def test_a_restart_after_the_commit_is_not_applied_twice(bound: Cluster) -> None:
    file_number, step = f"PGR-{uuid.uuid4().hex[:8]}", f"pgr-{uuid.uuid4().hex[:8]}-referral"
    first = policies.apply_once(step_key=step, case_id=None, attempt=0, write=referral(file_number))
    bound.restart()  # the flow never heard: its task is retried, the run replayed
    again = policies.apply_once(step_key=step, case_id=None, attempt=0, write=referral(file_number))
    assert again.result == first.result
    assert written(bound, file_number, step) == (1, 1)


def test_a_check_after_a_restart_reads_through_a_new_connection(bound: Cluster) -> None:
    file_number, step = f"PGR-{uuid.uuid4().hex[:8]}", f"pgr-{uuid.uuid4().hex[:8]}-referral"
    policies.apply_once(step_key=step, case_id=None, attempt=0, write=referral(file_number))
    bound.restart()
    with session_scope(bound.url) as session:
        assert ledger.recorded(session, key=step) is not None
