"""agency scope, phase attendance, who a participant is, item audiences, actions owned by client or family

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 00:50:00

- `agency.scope`: tells apart several agencies of one kind (the local and the regional police);
  a governance profile may require one of each in its core group.
- `participant.phases`: the phases a participant attends (JSON list; NULL means every phase).
- `participant.relation`: for a family participant, who they are to the client by role (parent,
  sibling, partner, ...), never by name; hand-over requests say for whom they are.
- `planitem.classification`, `actionitem.classification`: every item has an audience like an
  information item (existing rows become `professional`).
- `actionitem.owner_role`: `client` or `family` when the client or the family owns an action;
  `owner_agency_id` is then the intermediary that reaches them.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import sqlmodel


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phases', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('relation', sa.String(length=32), nullable=True))
    for table in ('planitem', 'actionitem'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column('classification', sa.String(length=16), nullable=False, server_default='professional')
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('classification', server_default=None)
    with op.batch_alter_table('actionitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_role', sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('actionitem', schema=None) as batch_op:
        batch_op.drop_column('owner_role')
        batch_op.drop_column('classification')
    with op.batch_alter_table('planitem', schema=None) as batch_op:
        batch_op.drop_column('classification')
    with op.batch_alter_table('participant', schema=None) as batch_op:
        batch_op.drop_column('relation')
        batch_op.drop_column('phases')
    with op.batch_alter_table('agency', schema=None) as batch_op:
        batch_op.drop_column('scope')
