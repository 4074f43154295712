"""audit log and consent ledger are append-only in the database itself

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 05:00:00.000000

The audit log (auditevent) and the consent ledger (consentrecord) are appended to, never updated
in place or deleted. These triggers make the database refuse UPDATE and DELETE of their rows (and,
on PostgreSQL, TRUNCATE of the tables), whatever client issues them:

- PostgreSQL: one plpgsql function, caseconf_refuse_change(), raising SQLSTATE 42501
  (insufficient_privilege), used by BEFORE UPDATE OR DELETE ... FOR EACH ROW and
  BEFORE TRUNCATE ... FOR EACH STATEMENT triggers on both tables.
- SQLite: BEFORE UPDATE and BEFORE DELETE triggers doing RAISE(ABORT, ...) (an IntegrityError).

Both give the message "<table>: rows are append-only (audit log / consent ledger); <OP> refused".

Autogenerate does not compare triggers, so the models and migrations still agree. Beware on
SQLite: a later `batch_alter_table` on either table recreates the table and loses its triggers;
such a migration must create them again (see create_sqlite_triggers below).
"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

TABLES = ("auditevent", "consentrecord")
MESSAGE = "rows are append-only (audit log / consent ledger)"
FUNCTION = "caseconf_refuse_change"


def _dialect() -> str:
    # The migration context knows the dialect online and offline (`alembic upgrade --sql`).
    return op.get_context().dialect.name


def create_postgresql_triggers() -> None:
    # No '%' and no ':name' in the SQL: it goes through text() and the DBAPI untouched.
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION USING
                MESSAGE = TG_TABLE_NAME || ': {MESSAGE}; ' || TG_OP || ' refused',
                ERRCODE = 'insufficient_privilege',
                HINT = 'append a new row instead of changing or removing one';
        END;
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )


def drop_postgresql_triggers() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")


def create_sqlite_triggers() -> None:
    for table in TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: {MESSAGE}; {operation} refused'); END"
            )


def drop_sqlite_triggers() -> None:
    for table in TABLES:
        for operation in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{operation.lower()}")


def upgrade() -> None:
    """Upgrade schema."""
    dialect = _dialect()
    if dialect == "postgresql":
        create_postgresql_triggers()
    elif dialect == "sqlite":
        create_sqlite_triggers()


def downgrade() -> None:
    """Downgrade schema."""
    dialect = _dialect()
    if dialect == "postgresql":
        drop_postgresql_triggers()
    elif dialect == "sqlite":
        drop_sqlite_triggers()
