"""Engine and sessions for caseconf's database, and `saved_id` (a saved row's id as an int);
migrations are Alembic's (`alembic upgrade head`)."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from models.config.settings import PROJECT_ROOT, get_settings
from models.record import summaries


def _make_room(url: str) -> None:
    """A SQLite file's folder (./var/ on a fresh clone) is created on first use."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().database_url
    _make_room(url)
    if url.startswith("sqlite:///"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(
            dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry
        ) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class RecordSession(Session):
    """caseconf's own sessions: each flush keeps the record's derived columns and summaries up
    to date (`models.record.summaries`). Only these sessions carry the listeners."""


event.listen(RecordSession, "before_flush", summaries.before_flush)
event.listen(RecordSession, "after_flush", summaries.after_flush)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def saved_id(row: _Row) -> int:
    """The id of a row the database has saved (read, or flushed after `add`); a row without one
    is a bug, never a refusal."""
    if row.id is None:
        raise ValueError(f"this {type(row).__name__} has no id: it was never saved")
    return row.id


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with RecordSession(get_engine(url), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def migrate(url: str | None = None) -> None:
    """Bring the database to the newest Alembic revision."""
    from alembic import command
    from alembic.config import Config

    url = url or get_settings().database_url
    _make_room(url)
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
