"""The audit log and the consent ledger are append-only in the database itself (migration 0003):
UPDATE and DELETE of their rows (and TRUNCATE on PostgreSQL) are refused, inserting still works."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, delete, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel, col

from models.config.settings import PROJECT_ROOT
from models.record.database import RecordSession, get_engine, session_scope
from models.record.tables import AuditEvent, ConsentRecord, StageChange
from models.rules.cases import refer_case, representative_by_code
from models.rules.consent import record_consent
from models.vocabulary import ConsentDecision, ConsentScope, Need, Stage, StageChangeKind

pytestmark = pytest.mark.database

NOW = datetime(2037, 3, 4, 9, 30, tzinfo=UTC)
TABLES = ("auditevent", "consentrecord", "stagechange")
MODELS: dict[str, type[SQLModel]] = {
    "auditevent": AuditEvent,
    "consentrecord": ConsentRecord,
    "stagechange": StageChange,
}


@dataclass(frozen=True)
class Rows:
    """Committed rows of this module: a case, one consent record and one audit event."""

    case_id: int
    recorder_id: int
    ids: dict[str, int]  # table name -> id of this module's row in it


@pytest.fixture(scope="module")
def engine(database: str) -> Engine:
    return get_engine(database)


@pytest.fixture(scope="module")
def rows(database: str) -> Rows:
    """Committed through the ordinary code paths (refer_case, record_consent, audit)."""
    with session_scope(database) as session:
        case = refer_case(
            session,
            referring_agency="neustart-wien",
            file_number=f"APPEND-{uuid.uuid4().hex[:12]}",
            stage=Stage.post_release,
            needs=[Need.family_support],
            profile="generic",
            acting_representative_code="neustart-wien-1",
            reference_prefix="APPEND",
            flow_run_id=None,
            now=NOW,
        )
        recorder = representative_by_code(session, "neustart-wien-1")
        assert case.id is not None and recorder is not None and recorder.id is not None
        record = record_consent(
            session,
            case_id=case.id,
            scope=str(ConsentScope.social_network_conference),
            decision=ConsentDecision.granted,
            recorded_by_id=recorder.id,
            expires_on=date(2038, 1, 1),
            now=NOW,
        )
        event = AuditEvent(
            action="test.append_only", case_id=case.id, actor_id=recorder.id, at=NOW, detail="x"
        )
        session.add(event)
        move = StageChange(
            case_id=case.id,
            kind=StageChangeKind.move,
            from_stage=Stage.post_release,
            to_stage=Stage.custody,
            reason="recalled",
            actor_id=recorder.id,
            at=NOW,
        )
        session.add(move)
        session.flush()
        assert record.id is not None and event.id is not None and move.id is not None
        ids = {"auditevent": event.id, "consentrecord": record.id, "stagechange": move.id}
        return Rows(case.id, recorder.id, ids)


def snapshot(engine: Engine, table: str, row_id: int) -> tuple[Any, ...]:
    model = MODELS[table]
    with engine.connect() as connection:
        row = connection.execute(select(model).where(model.id == row_id)).one()  # type: ignore[attr-defined]
    return tuple(row)


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def assert_refused(error: pytest.ExceptionInfo[DBAPIError], table: str, operation: str) -> None:
    message = str(error.value.orig)
    assert f"{table}: rows are append-only" in message
    assert f"{operation} refused" in message


CHANGES: dict[str, dict[str, Any]] = {
    "auditevent": {"detail": "rewritten", "justification": "covering tracks"},
    "consentrecord": {"decision": str(ConsentDecision.refused), "expires_on": None},
    "stagechange": {"to_stage": str(Stage.pre_trial), "reason": "other"},
}


# --- what migration 0003 installed -----------------------------------------------------------


def trigger_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        return set(connection.execute(text(query)).scalars())


def test_the_migration_installed_the_triggers(engine: Engine) -> None:
    """The test session drops the schema (functions and triggers with it) before migrating."""
    if engine.dialect.name == "postgresql":
        expected = {f"{t}_append_only" for t in TABLES} | {f"{t}_no_truncate" for t in TABLES}
        with engine.connect() as connection:
            assert (
                connection.execute(
                    text("SELECT count(*) FROM pg_proc WHERE proname = 'caseconf_refuse_change'")
                ).scalar_one()
                == 1
            )
    else:
        expected = {f"{t}_no_{op}" for t in TABLES for op in ("update", "delete")}
    assert expected <= trigger_names(engine)


# --- UPDATE and DELETE through SQLAlchemy, committed transactions ----------------------------


@pytest.mark.parametrize("table", TABLES)
def test_update_is_refused_and_the_row_is_unchanged(engine: Engine, rows: Rows, table: str) -> None:
    model = MODELS[table]
    row_id = rows.ids[table]
    before = snapshot(engine, table, row_id)
    with pytest.raises(DBAPIError) as error, engine.begin() as connection:
        connection.execute(update(model).where(model.id == row_id).values(**CHANGES[table]))  # type: ignore[attr-defined]
    assert_refused(error, table, "UPDATE")
    assert snapshot(engine, table, row_id) == before


@pytest.mark.parametrize("table", TABLES)
def test_delete_is_refused_and_the_row_is_kept(engine: Engine, rows: Rows, table: str) -> None:
    model = MODELS[table]
    row_id = rows.ids[table]
    before = snapshot(engine, table, row_id)
    with pytest.raises(DBAPIError) as error, engine.begin() as connection:
        connection.execute(delete(model).where(model.id == row_id))  # type: ignore[attr-defined]
    assert_refused(error, table, "DELETE")
    assert snapshot(engine, table, row_id) == before


@pytest.mark.parametrize("table", TABLES)
def test_deleting_the_whole_table_is_refused(engine: Engine, rows: Rows, table: str) -> None:
    """DELETE without WHERE (SQLite's truncate optimisation is off for tables with triggers)."""
    before = count(engine, table)
    connection = engine.connect()
    try:
        transaction = connection.begin()
        with pytest.raises(DBAPIError) as error:
            connection.execute(text(f"DELETE FROM {table}"))
        transaction.rollback()  # never commit, whatever happened
    finally:
        connection.close()
    assert_refused(error, table, "DELETE")
    assert count(engine, table) == before


@pytest.mark.parametrize("table", TABLES)
def test_truncate_is_refused_on_postgresql(engine: Engine, rows: Rows, table: str) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    before = count(engine, table)
    connection = engine.connect()
    try:
        transaction = connection.begin()
        with pytest.raises(DBAPIError) as error:
            connection.execute(text(f"TRUNCATE {table}"))
        transaction.rollback()  # never commit, whatever happened
    finally:
        connection.close()
    assert_refused(error, table, "TRUNCATE")
    assert count(engine, table) == before


# --- the ORM's unit of work ------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_changing_a_loaded_row_through_the_orm_is_refused(
    database: str, engine: Engine, rows: Rows, table: str
) -> None:
    row_id = rows.ids[table]
    before = snapshot(engine, table, row_id)
    with pytest.raises(DBAPIError) as error, session_scope(database) as session:
        row = session.get(MODELS[table], row_id)
        assert row is not None
        for name, value in CHANGES[table].items():
            setattr(row, name, value)
    assert_refused(error, table, "UPDATE")
    assert snapshot(engine, table, row_id) == before


@pytest.mark.parametrize("table", TABLES)
def test_deleting_a_loaded_row_through_the_orm_is_refused(
    database: str, engine: Engine, rows: Rows, table: str
) -> None:
    row_id = rows.ids[table]
    before = snapshot(engine, table, row_id)
    with pytest.raises(DBAPIError) as error, session_scope(database) as session:
        row = session.get(MODELS[table], row_id)
        assert row is not None
        session.delete(row)
    assert_refused(error, table, "DELETE")
    assert snapshot(engine, table, row_id) == before


# --- appending still works -------------------------------------------------------------------


def test_inserting_still_works(engine: Engine, rows: Rows) -> None:
    with engine.begin() as connection:
        event_id = connection.execute(
            insert(AuditEvent)
            .values(action="test.append_only.more", case_id=rows.case_id, at=NOW, detail="y")
            .returning(col(AuditEvent.id))
        ).scalar_one()
        record_id = connection.execute(
            insert(ConsentRecord)
            .values(
                case_id=rows.case_id,
                scope=str(ConsentScope.social_network_conference),
                decision=str(ConsentDecision.withdrawn),
                recorded_by_id=rows.recorder_id,
                recorded_at=NOW,
            )
            .returning(col(ConsentRecord.id))
        ).scalar_one()
    assert event_id is not None and record_id is not None
    assert snapshot(engine, "auditevent", event_id)[0] == event_id
    assert snapshot(engine, "consentrecord", record_id)[0] == record_id


def test_the_ordinary_code_paths_still_append(database: str, rows: Rows) -> None:
    """record_consent appends a ledger row and an audit event, committed."""
    with session_scope(database) as session:
        record = record_consent(
            session,
            case_id=rows.case_id,
            scope=str(ConsentScope.social_network_conference),
            decision=ConsentDecision.withdrawn,
            recorded_by_id=rows.recorder_id,
            expires_on=None,
            now=NOW,
        )
        record_id = record.id
    with RecordSession(get_engine(database)) as session:
        assert session.get(ConsentRecord, record_id) is not None


# --- the migration goes down and up again (a fresh SQLite database) --------------------------


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url)
    return config


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def attempt(engine: Engine, statement: Callable[[], Any]) -> None:
    with engine.begin() as connection:
        connection.execute(statement())


def test_downgrade_to_0002_lifts_the_refusal_and_upgrade_restores_it(fresh_sqlite: Engine) -> None:
    config = alembic_config(str(fresh_sqlite.url))
    with fresh_sqlite.begin() as connection:
        connection.execute(insert(AuditEvent).values(action="a", at=NOW))
    with pytest.raises(DBAPIError):
        attempt(fresh_sqlite, lambda: update(AuditEvent).values(action="b"))

    command.downgrade(config, "0002")
    assert trigger_names(fresh_sqlite) == set()
    attempt(fresh_sqlite, lambda: update(AuditEvent).values(action="b"))

    command.upgrade(config, "head")
    with pytest.raises(DBAPIError) as error:
        attempt(fresh_sqlite, lambda: delete(AuditEvent))
    assert_refused(error, "auditevent", "DELETE")
