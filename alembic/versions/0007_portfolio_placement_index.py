"""portfolio report: open cases' placement read from one covering index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 02:40:00

- `ix_case_status_placement` on case (status, stage, conference_type, profile, area,
  referring_agency_id, lead_agency_id): the portfolio's open cases by stage, conference type,
  profile, area and lead, and the stage chart's column for today, are grouped in the index's
  order, without sorting and without reading the case rows (models/reporting/portfolio.py).
"""

from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COLUMNS = [
    "status",
    "stage",
    "conference_type",
    "profile",
    "area",
    "referring_agency_id",
    "lead_agency_id",
]


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_case_status_placement", "case", COLUMNS, unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_case_status_placement", table_name="case")
