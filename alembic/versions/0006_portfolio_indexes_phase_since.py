"""portfolio report: indexes where its figures scan, case.phase_since

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:30:00

- `case.phase_since`: when the case entered its current phase ("waiting since" in the managers'
  report); a transfer or a stage move no longer resets it. Existing rows start from
  `updated_at`, the best moment known for them.
- Indexes for the portfolio report (models/reporting/portfolio.py): open cases by phase, referrals,
  closures and repeat referrals, conferences held and prepared by date, participants by
  conference and role (covering), consent entries by date, open actions by owner agency
  (covering), reviews by status and due date, a case's stage history in time order.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import models.record.tables


# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

INDEXES: list[tuple[str, str, list[str]]] = [
    ("case", "ix_case_status_phase", ["status", "phase"]),
    ("case", "ix_case_created_at", ["created_at"]),
    ("case", "ix_case_closed_at", ["closed_at"]),
    ("case", "ix_case_file_number", ["referring_agency_id", "referral_file_number"]),
    ("stagechange", "ix_stagechange_case_id_at", ["case_id", "at"]),
    ("conference", "ix_conference_released_at", ["released_at"]),
    ("conference", "ix_conference_created_at", ["created_at"]),
    (
        "participant",
        "ix_participant_conference_role",
        ["conference_id", "role", "agency_id", "representative_id"],
    ),
    ("consentrecord", "ix_consentrecord_recorded_at", ["recorded_at"]),
    (
        "actionitem",
        "ix_actionitem_status_owner",
        ["status", "owner_agency_id", "due_on", "case_id"],
    ),
    ("review", "ix_review_status_due_at", ["status", "due_at"]),
]


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("phase_since", models.record.tables.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(sa.text('UPDATE "case" SET phase_since = updated_at'))
    for table, name, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    for table, name, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("phase_since")
