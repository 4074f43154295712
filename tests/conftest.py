"""Test set-up: a real database (SQLite, or PostgreSQL from CASECONF_TEST_DATABASE_URL), migrated
with Alembic and loaded with the demo directory; a real Prefect server for the flow tests."""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="caseconf-tests-"))
DATABASE_URL = os.environ.get("CASECONF_TEST_DATABASE_URL") or f"sqlite:///{_TMP / 'caseconf.db'}"
# Set before anything reads the settings, so every part of caseconf (and the serving process the
# flow tests start) uses the test database.
os.environ["CASECONF_DATABASE_URL"] = DATABASE_URL
os.environ["PREFECT_HOME"] = str(_TMP / "prefect")  # never the developer's var/prefect

from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

from models.database import get_engine, migrate, session_scope  # noqa: E402
from models.directory import load_directory, sync_directory  # noqa: E402


def _reset(url: str) -> None:
    """Start from an empty database: drop what an earlier run left behind."""
    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    else:
        SQLModel.metadata.drop_all(engine)
        with engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


@pytest.fixture(scope="session")
def database() -> str:
    """The migrated test database with the demo directory loaded; returns its URL."""
    _reset(DATABASE_URL)
    migrate(DATABASE_URL)
    with session_scope(DATABASE_URL) as session:
        sync_directory(session, load_directory())
    return DATABASE_URL


@pytest.fixture
def session(database: str) -> Iterator[Session]:
    """A session whose writes are rolled back after the test."""
    connection = get_engine(database).connect()
    transaction = connection.begin()
    with Session(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session
    transaction.rollback()
    connection.close()


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def prefect_server(tmp_root: Path) -> Iterator["PrefectServer"]:
    """A real Prefect server (started once per session) that this process talks to."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.prefect_harness import PrefectServer

    server = PrefectServer(tmp_root / "prefect-server")
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def serving(database: str, prefect_server: "PrefectServer", tmp_root: Path) -> Iterator["Serving"]:
    """caseconf's serving process on the test database; tests may stop and start it."""
    from tests.prefect_harness import Serving

    process = Serving(prefect_server, tmp_root / "serve.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


if TYPE_CHECKING:
    from tests.prefect_harness import PrefectServer, Serving
