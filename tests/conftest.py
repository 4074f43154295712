"""Test set-up: a real database (SQLite, or PostgreSQL from CASECONF_TEST_DATABASE_URL), migrated
with Alembic and loaded with the demo directory; a real Prefect server for the flow tests."""

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="caseconf-tests-"))


def _own_database(url: str | None) -> str:
    """The test database: SQLite in this process's folder, or CASECONF_TEST_DATABASE_URL's
    PostgreSQL database; under pytest-xdist each worker gets a database of its own beside it
    (`<name>_gw0`, ...), made here, so workers never reset each other's."""
    if not url:
        return f"sqlite:///{_TMP / 'caseconf.db'}"
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    from sqlalchemy import create_engine, make_url

    given = make_url(url)
    own = given.set(database=f"{given.database}_{worker}")
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{own.database}"')
    admin.dispose()
    return own.render_as_string(hide_password=False)


def _one_certificate() -> str:
    """A CA file holding one certificate, for Prefect's clients to load. Every Prefect client
    builds an SSL context from PREFECT_API_SSL_CERT_FILE (default: certifi's whole bundle, about
    80 ms of CPU to parse) even for a plain-http API; a flow run makes half a dozen clients and
    the tests one per poll. The test servers are plain http on loopback: nothing is verified."""
    import certifi

    bundle = Path(certifi.where()).read_text()
    end = "-----END CERTIFICATE-----\n"
    path = _TMP / "one-certificate.pem"
    path.write_text(bundle[bundle.index("-----BEGIN CERTIFICATE-----") : bundle.index(end)] + end)
    return str(path)


DATABASE_URL = _own_database(os.environ.get("CASECONF_TEST_DATABASE_URL"))
os.environ.setdefault("PREFECT_API_SSL_CERT_FILE", _one_certificate())
# Set before anything reads the settings, so every part of caseconf (and the serving process the
# flow tests start) uses the test database.
os.environ["CASECONF_DATABASE_URL"] = DATABASE_URL
os.environ["PREFECT_HOME"] = str(_TMP / "prefect")  # never the developer's var/prefect

from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, SQLModel  # noqa: E402

from models.config.directory import load_directory  # noqa: E402
from models.record.agencies import sync_directory  # noqa: E402
from models.record.database import RecordSession, get_engine, migrate, session_scope  # noqa: E402


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
    with RecordSession(bind=connection, join_transaction_mode="create_savepoint") as session:
        yield session
    transaction.rollback()
    connection.close()


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def prefect_server(tmp_root: Path) -> Iterator["PrefectServer"]:
    """A real Prefect server (started once per session) that this process talks to."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.prefect_harness import PrefectServer

    server = PrefectServer(tmp_root / "prefect-server")
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
            # Logs of runs made in this process go out in batches: send them while the server
            # is still there, not at exit ("Error logging to API").
            APILogWorker.drain_all(timeout=5)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def serving(
    database: str, prefect_server: "PrefectServer", mail: "MailCatcher", tmp_root: Path
) -> Iterator["Serving"]:
    """caseconf's serving process on the test database; tests may stop and start it."""
    from tests.prefect_harness import Serving

    process = Serving(prefect_server, tmp_root / "serve.log")
    process.start()
    try:
        yield process
    finally:
        process.stop()


if TYPE_CHECKING:
    from deployments.mailcatcher import MailCatcher
    from tests.prefect_harness import PrefectServer, Serving


@pytest.fixture(scope="session")
def mail(tmp_root: Path) -> Iterator["MailCatcher"]:
    """A real SMTP server on loopback receiving every message the serving process sends, and
    an Apprise config (the demo one, pointed at it) that the serving process uses."""
    from deployments.mailcatcher import MailCatcher
    from tests.prefect_harness import free_port

    catcher = MailCatcher("127.0.0.1", free_port(), tmp_root / "mail")
    catcher.start()
    demo = (Path(__file__).parent.parent / "config" / "apprise.demo.yaml").read_text()
    config = tmp_root / "apprise.yaml"
    # The chat receiver is not started here: the chat channel is down until a test starts it.
    chat_port = free_port()
    config.write_text(
        demo.replace("127.0.0.1:2525", f"127.0.0.1:{catcher.port}").replace(
            "127.0.0.1:8765", f"127.0.0.1:{chat_port}"
        )
    )
    catcher.chat_port = chat_port  # type: ignore[attr-defined]
    os.environ["CASECONF_APPRISE_CONFIG"] = str(config)
    # A channel that is down fails fast in tests: one retry, a fraction of a second apart.
    os.environ["CASECONF_DELIVERY_RETRIES"] = "1"
    os.environ["CASECONF_DELIVERY_RETRY_DELAY"] = "0.2"
    try:
        yield catcher
    finally:
        catcher.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first: `make test` hands tests out one at a time in this order
    (`--dist load --maxschedchunk 1`), so the workers finish together instead of one
    waiting for a long walk that started last."""
    # Seconds each file took in a fresh clone's `.ci/run`, roughly: the long walk and the
    # production stack (mostly waiting on heartbeats) 150 each, the browser walks 50 to 70 each
    # (apart: three Chromiums at once slowed each other by half), the crash points 130, the
    # pool move 100, the dated tests again under another clock 60.
    order = {
        "test_long_walk.py": 0,
        "test_production_topology.py": 0,
        "test_browser_walk.py": 1,
        "test_crash_points.py": 1,
        "test_pool_move.py": 1,
        "test_other_clocks.py": 2,
        "test_case_flow.py": 2,
    }

    def rank(item: pytest.Item) -> int:
        if item.path.name in order:
            return order[item.path.name]
        return 3 if item.get_closest_marker("flow") is not None else 4

    items.sort(key=rank)  # stable: collection order within each rank


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly when the browser tests could not run (they are skipped, never passed)."""
    from tests.browser import chromium_missing

    missing = chromium_missing()
    if missing:
        terminalreporter.write_sep("!", f"BROWSER TESTS SKIPPED: {missing}", red=True, bold=True)
