"""Alembic migrations and the SQLModel tables agree, and the migrations run up and down."""

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlmodel import SQLModel

import models.record.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.config.settings import PROJECT_ROOT
from models.record.database import migrate

pytestmark = pytest.mark.database

TABLES = {
    "stagechange",
    "agency",
    "representative",
    "case",
    "conference",
    "participant",
    "consentrecord",
    "informationitem",
    "planitem",
    "actionitem",
    "review",
    "notification",
    "channel",
    "venue",
    "auditevent",
    "effect",
    "formrefusal",
    "agencyparticipation",
    "stagetally",
    "agencyparticipationmonth",
}


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url)
    return config


def differences(url: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture
def fresh_sqlite(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'fresh.db'}"


def test_upgrade_head_on_an_empty_sqlite_database_matches_the_models(fresh_sqlite: str) -> None:
    migrate(fresh_sqlite)
    assert table_names(fresh_sqlite) == TABLES
    assert differences(fresh_sqlite) == []


def test_downgrade_base_then_upgrade_head_on_sqlite(fresh_sqlite: str) -> None:
    config = alembic_config(fresh_sqlite)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert table_names(fresh_sqlite) == set()
    command.upgrade(config, "head")
    assert table_names(fresh_sqlite) == TABLES
    assert differences(fresh_sqlite) == []


def test_the_migrated_test_database_matches_the_models(database: str) -> None:
    """The session's database (PostgreSQL when CASECONF_TEST_DATABASE_URL is set)."""
    assert table_names(database) == TABLES
    assert differences(database) == []


def test_partial_unique_index_is_created_by_the_migration(database: str) -> None:
    engine = create_engine(database)
    try:
        indexes = {i["name"]: i for i in inspect(engine).get_indexes("case")}
    finally:
        engine.dispose()
    index = indexes["uq_case_open_file_number"]
    assert index["unique"]
    assert index["column_names"] == ["referring_agency_id", "referral_file_number"]


def test_migrate_creates_the_folder_of_a_new_sqlite_database(tmp_path) -> None:
    """A fresh clone has no ./var/: the first `make run` must still migrate."""
    from models.record.database import migrate

    target = tmp_path / "not-yet" / "there" / "caseconf.db"
    migrate(f"sqlite:///{target}")
    assert target.exists()
