"""portfolio report: summaries kept on every write, so the report reads few rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 06:00:00

- `case.conference_lead_agency_id`: the lead of the case's latest conference that has one,
  and `ix_case_status_lead` on case (status, lead_agency_id, conference_lead_agency_id): open
  cases by lead agency, grouped in the index's order (no conference or participant read).
- Covering indexes, so the figures that still read a row per case read an index entry
  instead: `ix_case_waiting` (cases waiting for a person, late or not, the oldest listed),
  `ix_conference_held` (the quarter's conferences held, first conferences, reviews held),
  `ix_review_due` (reviews coming and overdue).
- `agencyparticipation`: per case and agency, how the agency was represented at the case's
  conferences (participations, named, by the most frequent person, first and last dates), and
  `agencyparticipationmonth`: those summed per agency and month of the first conference. The
  continuity figure reads a dozen months per agency and the cases at the window's edges
  instead of every participation of the year.
- `stagetally`: cases by stage at quarter ends, as changes per quarter end and stage; the
  picture of open cases by stage sums a few rows per quarter instead of every stage change.

Kept by listeners on every flush (models/record/tables.py, models/reporting/portfolio.py); existing rows get
them here, computed as the listeners would.
"""

from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.orm import Session

import models.record.tables

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("case", "ix_case_status_lead", ["status", "lead_agency_id", "conference_lead_agency_id"]),
    (
        "case",
        "ix_case_waiting",
        ["status", "phase", "phase_since", "updated_at", "reference", "referring_agency_id"],
    ),
    (
        "conference",
        "ix_conference_held",
        ["released_at", "cycle", "kind", "conference_type", "starts_at", "case_id"],
    ),
    ("review", "ix_review_due", ["status", "due_at", "case_id", "cycle"]),
]


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column(
        "case",
        sa.Column(
            "conference_lead_agency_id", sa.Integer(), sa.ForeignKey("agency.id"), nullable=True
        ),
        inline_references=True,
    )
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.create_table(
        "agencyparticipation",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("first_at", models.record.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("first_month", sa.Date(), nullable=False),
        sa.Column("last_at", models.record.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("participations", sa.Integer(), nullable=False),
        sa.Column("named", sa.Integer(), nullable=False),
        sa.Column("same_person", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("case_id", "agency_id"),
    )
    op.create_index(
        "ix_agencyparticipation_first_at",
        "agencyparticipation",
        ["first_at", "agency_id", "participations", "named", "same_person"],
        unique=False,
    )
    op.create_index(
        "ix_agencyparticipation_span",
        "agencyparticipation",
        ["first_month", "last_at", "first_at", "case_id", "agency_id"],
        unique=False,
    )
    op.create_table(
        "agencyparticipationmonth",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("participations", sa.Integer(), nullable=False),
        sa.Column("named", sa.Integer(), nullable=False),
        sa.Column("same_person", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["agency_id"], ["agency.id"]),
        sa.PrimaryKeyConstraint("agency_id", "month"),
    )
    op.create_table(
        "stagetally",
        sa.Column("at", sa.Date(), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("at", "stage"),
    )
    from models.record.summaries import rebuild_summaries  # the listeners' own computation

    with Session(bind=op.get_bind()) as session:
        rebuild_summaries(session)
        session.flush()


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("stagetally")
    op.drop_table("agencyparticipationmonth")
    op.drop_index("ix_agencyparticipation_span", table_name="agencyparticipation")
    op.drop_index("ix_agencyparticipation_first_at", table_name="agencyparticipation")
    op.drop_table("agencyparticipation")
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("conference_lead_agency_id")
